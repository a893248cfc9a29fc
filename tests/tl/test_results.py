"""The verbs' typed results and their shared preparation: ``to_frame()`` is the table
``inplace=False`` returned before, ``write()`` the layout ``inplace=True`` writes, the old
spellings still work (warned), ``prepare()`` changes nothing it is given, warnings point at
the caller, and the screen's report, plot and files are the ones ``c2s screen`` writes."""

from __future__ import annotations

import copy
import re
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

import c2s
from c2s._errors import C2SError
from c2s.tl import EmbeddingResult, PredictionResult


@pytest.fixture(scope="module")
def model(trained_model):
    from c2s.model import C2SModel

    return C2SModel.from_pretrained(trained_model, device="cpu")


@pytest.fixture
def cells(pbmc):
    """Ten PBMC cells, the fourth expressing nothing."""
    a = pbmc[:10].copy()
    a.X = a.X.toarray()
    a.X[3] = 0
    return a


# -- to_frame() against the frame inplace=False returned before -----------------------------------
def _old_top_k(probs: pd.DataFrame, key_added: str, k: int) -> pd.DataFrame:
    """The table of the most probable labels as predict built it before the typed results."""
    P = probs.to_numpy()
    have = ~np.isnan(P).any(1)
    order = np.argsort(-np.nan_to_num(P, nan=-1.0), axis=1, kind="stable")[:, :k]
    names = np.asarray(probs.columns, dtype=object)
    out = {}
    for i in range(min(k, P.shape[1])):
        out[f"{key_added}_top{i + 1}"] = np.where(have, names[order[:, i]], None)
        out[f"{key_added}_top{i + 1}_probability"] = np.where(
            have, np.take_along_axis(P, order[:, i : i + 1], 1)[:, 0], np.nan
        )
    return pd.DataFrame(out, index=probs.index)


def _old_frame(frame, prob_frame, info, key_added, top_k=1) -> pd.DataFrame:
    """What ``predict(inplace=False)`` returned before (its ``_results``, inplace=False)."""
    if top_k > 1 and prob_frame is not None:
        frame = pd.concat([frame, _old_top_k(prob_frame, key_added, top_k)], axis=1)
    if prob_frame is not None:
        frame = pd.concat([frame, prob_frame.add_prefix("p_")], axis=1)
    frame.attrs["c2s"] = info
    return frame


def _old_per_cell(prep, units, pred, probs, answers, cands, key_added):
    """Per-cell columns and probabilities as predict built them (named columns, reindexed to
    all the input's cells) before the result was built from arrays."""
    cs, index = prep.cells, prep.index
    cell_unit = np.full(cs.n_cells, -1)
    for u, unit in enumerate(units):
        cell_unit[list(unit)] = u
    have = cell_unit >= 0
    col = np.array([pred[u] if u >= 0 else None for u in cell_unit], dtype=object)
    frame = pd.DataFrame({key_added: col}, index=cs.obs.index)
    if probs is not None:
        frame[key_added + "_probability"] = np.where(have, probs.max(1)[cell_unit], np.nan)
    if answers is not None:
        frame[key_added + "_answer"] = [answers[u] if u >= 0 else None for u in cell_unit]
    frame = frame.reindex(index)
    prob_frame = None
    if probs is not None:
        prob_frame = pd.DataFrame(
            probs[np.maximum(cell_unit, 0)], index=cs.obs.index, columns=cands
        )
        prob_frame[~have] = np.nan
        prob_frame = prob_frame.reindex(index)
    return frame, prob_frame


def _verb_units(kind: str, grouped: bool, dtype):
    """What predict has before the result is built: 6 input cells, the third with no gene
    (left out of ``prep.cells``), the units (single cells, or groups of cells) and their
    labels, probabilities and answers."""
    from types import SimpleNamespace

    rng = np.random.default_rng(0)
    index = pd.Index([f"c{i}" for i in range(6)])
    kept = index.delete(2)
    prep = SimpleNamespace(cells=SimpleNamespace(n_cells=5, obs=pd.DataFrame(index=kept)))
    prep.index = index
    units = [(0, 3), (1,), (2, 4)] if grouped else [(i,) for i in range(5)]
    cands = ["B", "T/NK", "Mono"]
    P = rng.dirichlet(np.ones(3), len(units)).astype(dtype)
    pred = [cands[j] for j in P.argmax(1)]
    probs = P if kind == "score" else None
    answers = [f"answer {i}" for i in range(len(units))] if kind == "free" else None
    if kind == "free":
        pred[0] = None  # an answer that parses to no label
    return prep, units, pred, probs, answers, cands


@pytest.mark.parametrize("kind", ["score", "constrained", "free"])
@pytest.mark.parametrize("grouped", [False, True])
@pytest.mark.parametrize("top", [1, 2, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_frame_is_the_frame_predict_returned_before(kind, grouped, top, dtype):
    from c2s.tl._predict import _per_cell

    prep, units, pred, probs, answers, cands = _verb_units(kind, grouped, dtype)
    info = {"task": "cell_type_prediction", "mode": kind, "labels": cands}
    top = top if probs is not None else 1
    options = {"key_added": "k", "top_labels": top, "batch_size": 8}
    got = _per_cell(prep, units, pred, probs, answers, cands, info, **options).to_frame()
    frame, prob_frame = _old_per_cell(prep, units, pred, probs, answers, cands, "k")
    want = _old_frame(frame, prob_frame, info, "k", top)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.attrs == want.attrs and list(got.dtypes) == list(want.dtypes)
    for c in got.columns:  # the same missing markers (NaN or None), not only equal-looking
        assert [type(v) for v in got[c]] == [type(v) for v in want[c]], c


def test_to_frame_and_write_agree_with_what_the_verbs_write(model, cells):
    """``inplace=False`` then ``.write(adata)`` gives the AnnData ``inplace=True`` gives;
    ``.to_frame()`` holds the same columns and probabilities."""
    for kw in ({}, {"top_labels": 3}, {"mode": "free", "max_new_tokens": 3}, {"mode": "probe"}):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the empty cell
            a, b = cells.copy(), cells.copy()
            c2s.tl.predict(a, model, key_added="k", **kw)
            res = c2s.tl.predict(b, model, key_added="k", inplace=False, **kw)
        assert isinstance(res, PredictionResult) and "k" not in b.obs
        res.write(b)
        pd.testing.assert_frame_equal(a.obs, b.obs)
        assert set(a.obsm) == set(b.obsm)
        for key in a.obsm:
            np.testing.assert_allclose(a.obsm[key], b.obsm[key], atol=1e-6)
        assert {k: v for k, v in a.uns["k"].items() if k != "seconds"} == {
            k: v for k, v in b.uns["k"].items() if k != "seconds"
        }
        frame = res.to_frame()
        assert list(frame.index) == list(cells.obs_names)
        obs_columns = [c for c in a.obs.columns if c.startswith("k")]
        pd.testing.assert_frame_equal(frame[obs_columns], a.obs[obs_columns])
        if "k_probabilities" in a.obsm:
            cols = ["p_" + lab for lab in a.uns["k"]["labels"]]
            np.testing.assert_allclose(frame[cols].to_numpy(), a.obsm["k_probabilities"])
        assert frame.attrs["c2s"]["mode"] == a.uns["k"]["mode"]
        assert pd.isna(frame["k"].iloc[3])  # the cell with no gene got no prediction
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = cells.copy(), cells.copy()
        c2s.tl.embed(a, model, key_added="e")
        emb = c2s.tl.embed(b, model, key_added="e", inplace=False)
    assert isinstance(emb, EmbeddingResult)
    emb.write(b)
    np.testing.assert_allclose(a.obsm["e"], b.obsm["e"], atol=1e-6)
    assert a.uns["e"] == b.uns["e"] == emb.info
    frame = emb.to_frame()
    assert list(frame.columns) == [f"c2s_{j}" for j in range(emb.X.shape[1])]
    assert frame.iloc[3].isna().all() and np.isfinite(frame.drop(index=frame.index[3])).all(None)


def test_old_spellings_still_work_with_a_warning(model, pbmc):
    cells = pbmc[:4].copy()
    new = c2s.tl.predict(cells, model, top_labels=2, inplace=False)
    with pytest.warns(FutureWarning, match="top_k= is now called top_labels="):
        old = c2s.tl.predict(cells, model, top_k=2, inplace=False)
    pd.testing.assert_frame_equal(old.to_frame(), new.to_frame())
    with pytest.raises(C2SError, match="Give top_labels= only"):
        c2s.tl.predict(cells, model, top_k=2, top_labels=2, inplace=False)
    with pytest.warns(FutureWarning, match=r"call \.to_frame\(\)"):
        column = new["c2s_prediction"]  # the DataFrame calls of inplace=False before
    assert list(column) == list(new.labels)
    with pytest.warns(FutureWarning, match=r"\.to_frame\(\)"):
        assert new.filter(like="p_").shape == (4, len(new.candidates))
    assert len(new) == 4


def test_dataframe_iteration_and_membership_still_work_with_a_warning():
    labels = np.array(["a", "b"], dtype=object)
    res = PredictionResult(pd.Index(["x", "y"]), labels, {"mode": "free"}, answers=labels)
    with pytest.warns(FutureWarning, match=r"call \.to_frame\(\)") as caught:
        assert "c2s_prediction" in res and "p_a" not in res
        assert list(res) == ["c2s_prediction", "c2s_prediction_answer"]
    assert len(caught) == 3 and {w.filename for w in caught} == {__file__}
    emb = EmbeddingResult(pd.Index(["x"]), np.zeros((1, 2)), {})
    with pytest.warns(FutureWarning, match=r"\.to_frame\(\)"):
        assert list(emb) == ["c2s_0", "c2s_1"] and "c2s_1" in emb


def test_take_expand_and_concat_keep_rows_by_position():
    P = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    labels = np.array(["a", "b", "a"], dtype=object)
    res = PredictionResult(
        pd.Index(["x", "y", "z"]), labels, {"mode": "score"}, probability=P.max(1),
        probabilities=P, candidates=["a", "b"],
    )  # fmt: skip
    part = res.take([2, 0])
    assert list(part.index) == ["z", "x"] and list(part.labels) == ["a", "a"]
    both = PredictionResult.concat([res.take([0]), res.take([1, 2])])
    pd.testing.assert_frame_equal(both.to_frame(), res.to_frame())
    wide = res.expand([1, -1, 1], pd.Index(["q", "q", "r"]))  # ids may repeat
    frame = wide.to_frame()
    assert list(frame.index) == ["q", "q", "r"] and frame.iloc[0, 0] == "b"
    assert pd.isna(frame.iloc[1]).all() and frame.iloc[2].equals(frame.iloc[0])
    emb = EmbeddingResult(pd.Index(["x", "y"]), np.eye(2, dtype=np.float32), {})
    out = emb.expand([-1, 0], pd.Index(["e", "x"]))
    assert out.X.dtype == np.float32 and np.isnan(out.X[0]).all() and out.X[1, 0] == 1
    assert EmbeddingResult.concat([emb.take([1]), emb.take([0])]).X[0, 1] == 1
    with pytest.raises(C2SError, match="have no result"):
        import anndata as ad

        emb.write(ad.AnnData(obs=pd.DataFrame(index=["x", "w"])))


# -- prepare() ------------------------------------------------------------------------------------
def test_prepare_changes_nothing_it_is_given(model, pbmc, pbmc_dataset):
    from c2s.prompts import Renderer
    from c2s.tl._inputs import prepare, units_of

    cells = pbmc[:12].copy()
    cells.obs["donor"] = np.repeat(["d1", "d2"], 6)
    before = cells.copy()
    prep = prepare(cells, model, task="tissue_prediction", n_genes=8)
    assert (
        prep.n_genes == 8 and prep.cells.n_cells == 12 and list(prep.index) == list(cells.obs_names)
    )
    r = prep.renderer
    state = copy.deepcopy(vars(r))
    units = prep.units(["donor"])
    assert sorted(len(u) for u in units) == [6, 6]
    assert len(prep.units()) == 1  # consecutive runs of max_cells (20) cells
    prep.prompts(units)
    assert vars(r).keys() == state.keys()
    for k, v in state.items():
        assert np.all(getattr(r, k) == v) if isinstance(v, np.ndarray) else getattr(r, k) == v, k
    own = Renderer("tissue_prediction", n_genes=8, min_cells=5)
    units_of(own, prep.cells, ["donor"])
    assert own.min_cells == 5 and own.group_by is None
    np.testing.assert_array_equal(cells.X.toarray(), before.X.toarray())
    pd.testing.assert_frame_equal(cells.obs, before.obs)
    pd.testing.assert_frame_equal(cells.var, before.var)
    assert set(cells.uns) == set(before.uns) and set(cells.obsm) == set(before.obsm)
    with pytest.raises(AttributeError):
        prep.n_genes = 3  # frozen: what a verb needs, not a place to keep state
    meta = copy.deepcopy(pbmc_dataset.meta)
    prepare(pbmc_dataset, model, task="cell_type_prediction", cells={"split": "test"})
    assert pbmc_dataset.meta == meta


def test_fitted_prompts_are_those_prompt_within_gives(model, pbmc):
    from c2s.encoding import fit_prompts, prompt_within
    from c2s.prompts import Renderer

    cs = c2s.sentences.from_anndata(pbmc[:4].copy(), n_genes=300)
    r = Renderer("cell_type_prediction", n_genes=300)
    units = [(i,) for i in range(4)]
    whole = fit_prompts(r, cs, units, model.tokenizer, None)
    assert whole.ids is None and whole.shortened == [] and whole.n_genes == [300] * 4
    fitted = fit_prompts(r, cs, units, model.tokenizer, 120)
    assert fitted.shortened and all(len(ids) <= 120 for ids in fitted.ids)
    for i in range(4):
        want = prompt_within(r, cs, units[i], model.tokenizer, 120)
        assert (fitted.prompts[i], fitted.n_genes[i]) == want
        start, end = fitted.spans(cs, units)[i]
        assert fitted.prompts[i][start:end] == cs.to_text(fitted.n_genes[i])[i]
    with pytest.raises(C2SError, match="Even one gene per cell does not fit in 3 tokens"):
        fit_prompts(r, cs, units, model.tokenizer, 3)


def test_warnings_point_at_the_callers_line(model, cells):
    with pytest.warns(UserWarning, match="express no gene") as caught:
        c2s.tl.embed(cells, model, inplace=False)
    assert {w.filename for w in caught if "express no gene" in str(w.message)} == {__file__}


# -- the screen's report, plot and files ----------------------------------------------------------
@pytest.fixture(scope="module")
def pert_model(tmp_path_factory):
    """A tiny model trained two steps on perturbation prediction (the plumbing), and its
    training data."""
    from c2s.model import C2SModel
    from c2s.train import fine_tune

    adata = c2s.datasets.synthetic_perturbation(n_cells=12, n_genes=120, n_targets=10, seed=3)
    root = tmp_path_factory.mktemp("screen")
    held = ["PERT3", "PERT4+PERT5"]
    ds = c2s.io.convert(adata, root / "ds", normalize=True, split_by="perturbation", holdout=held)
    ds.update_meta(inverse=c2s.inverse.fit_inverse(ds.sentences(split="train")).to_dict())
    m = C2SModel.from_scratch(ds, max_length=512, device="cpu")
    fine_tune(
        m, ds, out=root / "model", tasks=["perturbation_prediction"], n_genes=10,
        context=["context"], max_steps=2, batch_size=4, eval_split=None, probe=False,
        calibrate=False,
    )  # fmt: skip
    return root / "model"


def test_the_screen_writes_what_the_command_writes(pert_model, tmp_path, capsys):
    import anndata as ad

    from c2s.cli import main
    from c2s.pp import log10_normalize

    controls = c2s.datasets.synthetic_perturbation(n_cells=3, n_genes=120, n_targets=10, seed=3)
    controls.X = log10_normalize(controls.X)
    controls.write_h5ad(tmp_path / "cells.h5ad")
    perts, program = ["PERT1", "PERT2", "PERT3"], list(c2s.datasets.MHC_I)
    argv = [
        "screen", str(pert_model), str(tmp_path / "cells.h5ad"), "--out", str(tmp_path / "cli"),
        "--perturbations", *perts, "--context-key", "context", "--contexts", "no_ifn", "ifn",
        "--program", *program, "--n-samples", "2", "--n-genes", "10", "--top", "2",
    ]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    report = (tmp_path / "cli" / "report.md").read_text()
    res = c2s.tl.screen(
        ad.read_h5ad(tmp_path / "cells.h5ad"), pert_model, perts, context_key="context",
        contexts=["no_ifn", "ifn"], program=program, n_samples=2, n_genes=10,
    )  # fmt: skip
    assert isinstance(res, c2s.tl.ScreenResult) and res.seconds > 0
    res.seconds = float(re.search(r"cells in ([0-9.]+) s\)", report).group(1))  # the CLI's run
    assert res.report(top=2) == report
    assert res.write(tmp_path / "lib", top=2) == tmp_path / "lib"
    for name in ("screen.csv", "report.md", "screen.png", ".c2s-output.json"):
        assert (tmp_path / "lib" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "lib").iterdir()) == sorted(
        p.name for p in (tmp_path / "cli").iterdir()
    )
    # the table as screen returned it before, and its DataFrame calls (warned)
    table = pd.read_csv(tmp_path / "cli" / "screen.csv", index_col="perturbation")
    pd.testing.assert_frame_equal(res.to_frame(), table, check_dtype=False, atol=1e-12)
    assert res.to_frame().attrs["c2s"] == res.info and res.contexts == ["no_ifn", "ifn"]
    with pytest.warns(FutureWarning, match=r"\.to_frame\(\)"):
        assert list(res.index) == list(table.index)
    assert list(res.top(1).index) == list(table.index[:1]) and len(res) == 3
    with pytest.raises(C2SError, match="top must be 0 or more"):
        res.report(top=-1)
    with pytest.raises(C2SError, match="exists"):
        res.write(tmp_path / "lib")  # an existing output needs overwrite
    res.write(tmp_path / "lib", overwrite=True, top=1)
    assert "| PERT" in (tmp_path / "lib" / "report.md").read_text()
    ax = res.plot(top=1)
    assert len(ax.texts) == 1
    import matplotlib.pyplot as plt

    _, own = plt.subplots()
    assert res.plot(own, top=3) is own and len(own.texts) == 3
    plt.close("all")
