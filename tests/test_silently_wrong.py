"""Answers that used to be silently wrong: damaged datasets that passed the check and were
copied, options accepted and then ignored or misread, perturbations the model never saw, and a
resumed run's loss. Each case runs through ``c2s.cli.main`` as a user would, asserting the
message, the exit status, that the inputs are unchanged and that nothing was left behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_reliability import _exits_cleanly, digest, leftovers, one_error_line

import c2s
from c2s.cli import main

TRAIN = ["--preset", "tiny", "--max-steps", "1", "--n-genes", "8", "--batch-size", "8"]
HELD = ["PERT3", "PERT4+PERT5"]  # held out of the perturbation model's training split


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture
def ds(pbmc_dataset, tmp_path):
    """A private copy of the PBMC dataset (tests damage it)."""
    out = tmp_path / "data" / "pbmc"
    shutil.copytree(pbmc_dataset.path, out)
    return out


@pytest.fixture(scope="module")
def pert(tmp_path_factory):
    """A perturbation dataset (two perturbations held out), a tiny model trained two steps on
    it (the plumbing, not science) and an .h5ad of control cells in two contexts."""
    pytest.importorskip("torch")
    from c2s.model import C2SModel
    from c2s.pp import log10_normalize
    from c2s.train import fine_tune

    root = tmp_path_factory.mktemp("pert")
    adata = c2s.datasets.synthetic_perturbation(n_cells=6, n_genes=120, n_targets=10, seed=3)
    pds = c2s.io.convert(adata, root / "ds", normalize=True, split_by="perturbation", holdout=HELD)
    pds.update_meta(inverse=c2s.inverse.fit_inverse(pds.sentences(split="train")).to_dict())
    m = C2SModel.from_scratch(pds, max_length=512, device="cpu")
    fine_tune(
        m, pds, out=root / "model", tasks=["perturbation_prediction"], n_genes=10,
        context=["context"], max_steps=2, batch_size=4, eval_split=None, probe=False,
        calibrate=False,
    )  # fmt: skip
    cells = c2s.datasets.synthetic_perturbation(n_cells=2, n_genes=120, n_targets=10, seed=3)
    cells.X = log10_normalize(cells.X)
    cells[cells.obs["perturbation"] == "control"].copy().write_h5ad(root / "controls.h5ad")
    return {"ds": pds, "model": root / "model", "controls": root / "controls.h5ad"}


# -- damaged datasets -----------------------------------------------------------------------
def _damage(ds: Path, how: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    shard = ds / "cells-00000.parquet"
    meta_file = ds / "c2s_dataset.json"
    meta = json.loads(meta_file.read_text())
    t = pq.read_table(shard)

    def put(name, array):
        pq.write_table(t.set_column(t.schema.get_field_index(name), name, array), shard)

    if how == "repeated_gene":  # the first cell names its top gene twice
        genes = t.column("genes").to_pylist()
        genes[0][1] = genes[0][0]
        put("genes", pa.array(genes, pa.list_(pa.int32())))
    elif how == "nan_value":
        values = t.column("values").to_pylist()
        values[3][2] = float("nan")
        put("values", pa.array(values, pa.list_(pa.float32())))
    elif how == "duplicated_vocab_gene":
        v = pq.read_table(ds / "vocab.parquet").to_pandas()
        v.loc[1, ["gene", "display_name"]] = v.loc[0, ["gene", "display_name"]].to_numpy()
        pq.write_table(pa.Table.from_pandas(v, preserve_index=False), ds / "vocab.parquet")
    elif how == "split_reordered":  # the same words, other codes: test cells read as train
        names = ["test", "train", "validation"]
        split = t.column("split").to_pylist()
        put("split", pa.DictionaryArray.from_arrays(
            pa.array([names.index(s) for s in split], pa.int8()), pa.array(names)
        ))  # fmt: skip
    elif how == "reserved_obs_column":
        meta["obs_columns"].append("split")
    elif how == "split_not_an_object":
        meta["split"] = "0.8,0.1,0.1"
    elif how == "inverse_without_metrics":
        del meta["inverse"]["heldout_metrics"]
    elif how == "inverse_unreadable":
        meta["inverse"] = {"selected": "rank_mean", "params": {"model": "magic"}}
    meta_file.write_text(json.dumps(meta))


def test_an_intact_dataset_passes_the_check(capsys, ds):
    code, out, err = run(capsys, "info", ds, "--check", "--json")
    assert code == 0, err
    assert json.loads(out)["check"]["problems"] == []


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("repeated_gene", "a gene repeats in the sentence of 1 cell"),
        ("nan_value", "not numbers (NaN or inf)"),
        ("duplicated_vocab_gene", "names 1 gene more than once"),
    ],
)
def test_a_damaged_dataset_fails_the_check_and_is_not_exported(capsys, tmp_path, ds, how, says):
    _damage(ds, how)
    before = digest(ds)
    code, out, err = run(capsys, "info", ds, "--check", "--json")
    assert code == 2 and "is damaged (1 problem)" in one_error_line(err)
    (problem,) = json.loads(out)["check"]["problems"]
    assert says in problem
    out_dir = tmp_path / "exported"
    code, _, err = run(capsys, "export", ds, out_dir)
    assert code == 2 and says in one_error_line(err) and "is damaged" in err
    assert not out_dir.exists() and leftovers(tmp_path) == []
    assert digest(ds) == before


@pytest.mark.parametrize(
    ("how", "argv", "says"),
    [
        ("reserved_obs_column", ["export", "{ds}", "{out}"], "other than ['cell_id'"),
        ("split_reordered", ["prompt", "{ds}", "--task", "cell_type_prediction", "--split",
                             "train"], "the split column is not ['train', 'validation', 'test']"),
        ("split_reordered", ["info", "{ds}", "--check"], "is damaged"),
        ("split_not_an_object", ["info", "{ds}"], "['split'] must each be a JSON object"),
        ("inverse_unreadable", ["info", "{ds}"], "holds an inverse model c2s cannot read"),
    ],
)  # fmt: skip
def test_damaged_metadata_is_one_line_and_exit_2(capsys, tmp_path, ds, how, argv, says):
    _damage(ds, how)
    before = digest(ds)
    out = tmp_path / "out"
    code, _, err = run(capsys, *[a.format(ds=ds, out=out) for a in argv])
    assert code == 2 and says in one_error_line(err)
    assert digest(ds) == before and not out.exists() and leftovers(tmp_path) == []


def test_an_inverse_fit_without_metrics_is_shown_as_such(capsys, ds):
    _damage(ds, "inverse_without_metrics")
    code, out, err = run(capsys, "info", ds)
    assert code == 0, err
    assert "inverse     rank_mean  (no held-out metrics recorded)" in out.splitlines()


# -- options accepted and ignored, or misread --------------------------------------------------
def _place(argv, **where) -> list[str]:
    return [a.format(**where) if isinstance(a, str) else str(a) for a in argv]


# (name, argv with placeholders, exit status, stderr says)
OPTIONS = [
    ("prompt --n -1", ["prompt", "{ds}", "--task", "cell_type_prediction", "--n", "-1"], 2, "--n must be at least 1"),
    ("prompt --n 0", ["prompt", "{ds}", "--task", "cell_type_prediction", "--n", "0"], 2, "--n must be at least 1"),
    ("prompt --seed -1", ["prompt", "{ds}", "--task", "cell_type_prediction", "--profile", "paraphrase", "--seed", "-1"], 2, "--seed must be"),
    ("quickstart --epochs -1", ["quickstart", "--out", "{out}", "--epochs", "-1"], 2, "epochs must be 0"),
    ("quickstart --epochs nan", ["quickstart", "--out", "{out}", "--epochs", "nan"], 2, "epochs must be 0"),
    ("train --dtype float8", ["train", "{ds}", "--out", "{out}", "--dtype", "float8", *TRAIN], 2, "Unknown dtype 'float8'; use auto, float32, bfloat16 or float16"),
    ("fine-tune --dtype float8", ["train", "{ds}", "--out", "{out}", "--model", "{model}", "--dtype", "float8", "--max-steps", "1"], 2, "Unknown dtype 'float8'"),
    ("new model --dtype", ["train", "{ds}", "--out", "{out}", "--dtype", "bfloat16", *TRAIN, "--eval-split", ""], 0, "--dtype is the precision a --model is loaded in"),
    ("--holdout of every value", ["convert", "{h5ad}", "{out}", "--split-by", "louvain", "--holdout", "{louvain}"], 2, "cover every cell"),
    ("--source-key with one input", ["convert", "{h5ad}", "{out}", "--source-key", "batch"], 2, "with one input no such column"),
    ("--genes with one input", ["convert", "{h5ad}", "{out}", "--genes", "union"], 0, "with one input it does nothing"),
    ("the same file twice", ["convert", "{h5ad}", "{h5ad}", "{out}"], 2, "are the same input"),
    ("the same file by another path", ["convert", "{h5ad}", "{tmp}/./cells.h5ad", "{out}"], 2, "are the same input"),
    ("the same file by a symlink", ["convert", "{h5ad}", "{link}", "{out}"], 2, "are the same input"),
    ("a copy of the file", ["convert", "{h5ad}", "{copy}", "{out}"], 2, "cell ids repeat across the inputs"),
    ("--scheduler not an address", ["convert", "{h5ad}", "{out}", "--scheduler", "notaurl"], 2, "not a Dask scheduler address"),
    ("--scheduler http", ["convert", "{h5ad}", "{out}", "--scheduler", "http://host:8786"], 2, "not a Dask scheduler address"),
    ("--scheduler empty", ["convert", "{h5ad}", "{out}", "--scheduler", ""], 2, "not a Dask scheduler address"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "argv", "status", "says"), OPTIONS, ids=[c[0] for c in OPTIONS])
def test_options_that_would_be_ignored_or_misread(
    capsys, tmp_path, ds, trained_model, pbmc, name, argv, status, says
):
    h5ad = tmp_path / "cells.h5ad"
    pbmc[:30].copy().write_h5ad(h5ad)
    shutil.copy(h5ad, tmp_path / "copy.h5ad")
    (tmp_path / "link.h5ad").symlink_to(h5ad)
    louvain = sorted(set(pbmc[:30].obs["louvain"].astype(str)))
    where = {
        "ds": ds, "model": trained_model, "h5ad": h5ad, "out": tmp_path / "out", "tmp": tmp_path,
        "link": tmp_path / "link.h5ad", "copy": tmp_path / "copy.h5ad",
    }  # fmt: skip
    if "{louvain}" in argv:
        i = argv.index("{louvain}")
        argv = [*argv[:i], *louvain, *argv[i + 1 :]]
    argv = _place(argv, **where)
    inputs = {p: digest(p) for p in (ds, trained_model, h5ad, tmp_path / "copy.h5ad")}
    code, _, err = run(capsys, *argv)
    assert code == status, err
    if status == 2:
        assert says in one_error_line(err)
        assert not (tmp_path / "out").exists(), "a refused command left output"
    else:
        assert "error:" not in err and "Traceback" not in err
        assert says in err
        assert (tmp_path / "out").exists()
    assert {p: digest(p) for p in inputs} == inputs, "an input changed"
    assert leftovers(tmp_path) == [] and leftovers(ds.parent) == []


def test_repeated_cell_ids_in_one_input_are_refused(capsys, tmp_path, pbmc):
    """Results are joined back by cell id: a file whose ids repeat would make a dataset that
    ``info --check`` calls damaged."""
    a = pbmc[:30].copy()
    a.obs_names = [a.obs_names[0], *a.obs_names[1:-1], a.obs_names[0]]
    h5ad = tmp_path / "dup.h5ad"
    a.write_h5ad(h5ad)
    before = digest(h5ad)
    code, _, err = run(capsys, "convert", h5ad, tmp_path / "out")
    assert code == 2 and "1 cell ids of" in one_error_line(err) and "make_unique" in err
    assert digest(h5ad) == before and not (tmp_path / "out").exists()
    assert leftovers(tmp_path) == []


# -- perturbations ----------------------------------------------------------------------------
SCREEN = ["--context-key", "context", "--program", "HLA-A", "B2M", "--n-samples", "1"]
PERTURBATIONS = [
    ("screen --top -1", ["screen", "{model}", "{cells}", "--out", "{out}", "--perturbations", "PERT1", *SCREEN, "--top", "-1"], 2, "--top must be 0 or more"),
    ("screen --contexts A A", ["screen", "{model}", "{cells}", "--out", "{out}", "--perturbations", "PERT1", *SCREEN, "--contexts", "ifn", "ifn"], 2, "contexts to compare must differ"),
    ("screen a blank name", ["screen", "{model}", "{cells}", "--out", "{out}", "--perturbations", "PERT1", " ", *SCREEN], 2, "must not be blank"),
    ("screen a lone +", ["screen", "{model}", "{cells}", "--out", "{out}", "--perturbations", "+", *SCREEN], 2, "names each of its parts"),
    ("perturb a blank name", ["perturb", "{model}", "{cells}", "--out", "{out}.h5ad", "--perturbations", ""], 2, "must not be blank"),
    ("perturb PERT1+", ["perturb", "{model}", "{cells}", "--out", "{out}.h5ad", "--perturbations", "PERT1+"], 2, "names each of its parts"),
    ("a binary perturbations file", ["screen", "{model}", "{cells}", "--out", "{out}", "--perturbations-file", "{binary}", *SCREEN], 2, "is not a text file"),
    ("perturb an unseen one", ["perturb", "{model}", "{cells}", "--out", "{out}.h5ad", "--perturbations", "PERT1", "PERT3"], 0, "never saw in training: 'PERT3'"),
    ("perturb an unseen one, strict", ["perturb", "{model}", "{cells}", "--out", "{out}.h5ad", "--perturbations", "PERT1", "PERT3", "--strict"], 2, "never saw in training: 'PERT3'"),
    ("screen an unseen one", ["screen", "{model}", "{cells}", "--out", "{out}", "--perturbations", "PERT1", "PERT4+PERT5", *SCREEN], 0, "never saw in training: 'PERT4+PERT5'"),
    ("screen an unseen one, strict", ["screen", "{model}", "{cells}", "--out", "{out}", "--perturbations", "PERT4+PERT5", *SCREEN, "--strict"], 2, "never saw in training: 'PERT4+PERT5'"),
    ("a model from before the record", ["perturb", "{old_model}", "{cells}", "--out", "{out}.h5ad", "--perturbations", "PERT3", "--strict"], 0, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "argv", "status", "says"), PERTURBATIONS, ids=[c[0] for c in PERTURBATIONS]
)
def test_perturbation_names_and_unseen_perturbations(
    capsys, tmp_path, pert, name, argv, status, says
):
    old = tmp_path / "old_model"  # a model saved before c2s recorded the perturbations
    shutil.copytree(pert["model"], old)
    cfg = json.loads((old / "c2s_config.json").read_text())
    del cfg["perturbations"]
    (old / "c2s_config.json").write_text(json.dumps(cfg))
    (tmp_path / "names.bin").write_bytes(bytes(range(256)) * 4)
    where = {
        "model": pert["model"], "cells": pert["controls"], "out": tmp_path / "out",
        "binary": tmp_path / "names.bin", "old_model": old,
    }  # fmt: skip
    inputs = {p: digest(p) for p in (pert["model"], pert["controls"], old)}
    code, _, err = run(capsys, *_place(argv, **where))
    assert code == status, err
    if status == 2:
        assert says in one_error_line(err)
        assert not list(tmp_path.glob("out*")), "a refused command left output"
    else:
        assert "error:" not in err and "Traceback" not in err
        assert (says in err) if says else ("never saw" not in err)
        assert list(tmp_path.glob("out*"))
    assert {p: digest(p) for p in inputs} == inputs, "an input changed"
    assert leftovers(tmp_path) == []


def test_the_model_records_the_perturbations_it_was_trained_on(pert):
    pds = pert["ds"]
    obs = pds.obs(["perturbation"]).iloc[pds.split_indices()["train"]]
    trained = sorted(set(obs["perturbation"].astype(str)) - {"control"})
    cfg = json.loads((pert["model"] / "c2s_config.json").read_text())
    assert cfg["perturbations"] == trained and not set(HELD) & set(trained)
    # a config without the record (every model saved before it) still loads
    from c2s.model import C2SConfig

    old = C2SConfig.from_dict({k: v for k, v in cfg.items() if k != "perturbations"})
    assert old.perturbations is None


def test_training_pairs_leave_out_cells_with_no_usable_perturbation_name():
    from c2s.prompts import Renderer

    adata = c2s.datasets.synthetic_perturbation(n_cells=3, n_genes=120, n_targets=10, seed=3)
    pert = adata.obs["perturbation"].astype(str).to_numpy().copy()
    perturbed = [i for i, p in enumerate(pert) if p != "control"]
    for i, bad in zip(perturbed[:4], ["", " ", "+", "PERT1+"], strict=True):
        pert[i] = bad
    adata.obs["perturbation"] = pert
    cs = c2s.sentences.from_anndata(adata, n_genes=10)
    r = Renderer("perturbation_prediction", n_genes=10, context_keys=["context"])
    with pytest.warns(UserWarning, match="4 cells have no usable 'perturbation'"):
        pairs = r.pairs(cs, range(cs.n_cells))
    assert len(pairs) == len(perturbed) - 4
    assert not {p for _, p in pairs} & set(perturbed[:4])


# -- a resumed run ------------------------------------------------------------------------------
def test_a_resumed_run_reports_the_loss_of_the_whole_run(capsys, tmp_path, ds, monkeypatch):
    from transformers import TrainerCallback

    import c2s.train._trainer as trainer_module

    opts = [
        "--preset", "tiny", "--n-genes", "8", "--batch-size", "8", "--max-steps", "6",
        "--save-steps", "2", "--logging-steps", "1", "--eval-split", "",
    ]  # fmt: skip

    class Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 5:  # after checkpoint-4: steps 5 and 6 are run again
                raise KeyboardInterrupt

    own = trainer_module.own_progress

    def with_stop(trainer, *a, **k):
        own(trainer, *a, **k)
        trainer.add_callback(Stop())

    out = tmp_path / "run"
    monkeypatch.setattr(trainer_module, "own_progress", with_stop)
    code, _, err = run(capsys, "train", ds, "--out", out, *opts)
    assert code == 130 and "--resume latest" in err
    monkeypatch.undo()
    code, _, err = run(capsys, "train", ds, "--out", out, *opts, "--resume", "latest")
    assert code == 0, err
    log = json.loads((out / "train_log.json").read_text())
    losses = {h["step"]: h["loss"] for h in log["log_history"] if "loss" in h}
    assert sorted(losses) == [1, 2, 3, 4, 5, 6]
    assert log["train_loss"] == pytest.approx(sum(losses.values()) / 6, rel=1e-6)
    cfg = json.loads((out / "c2s_config.json").read_text())
    assert cfg["training"]["train_loss"] == log["train_loss"]
    # the same as the run never interrupted
    code, _, err = run(capsys, "train", ds, "--out", tmp_path / "whole", *opts)
    assert code == 0, err
    whole = json.loads((tmp_path / "whole" / "train_log.json").read_text())
    assert log["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-4)


# -- the option space of a screen --------------------------------------------------------------
hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


def _often_unset(*values):
    """None (the default) three times in four, else one of ``values`` (valid ones and not),
    so that some draws get past every check."""
    return st.sampled_from([None] * (3 * len(values)) + list(values))


@hypothesis.settings(max_examples=25, deadline=None, derandomize=True)
@hypothesis.given(
    perts=st.lists(st.sampled_from(["PERT1", "PERT2", "PERT3", "PERT1+PERT2", "PERT1", "PERT2",
                                    "", "+"]), min_size=1, max_size=3),
    contexts=_often_unset(["ifn", "no_ifn"], ["no_ifn", "ifn"], ["ifn", "ifn"], ["ifn"],
                          ["nope", "ifn"], ["", "no_ifn"]),
    program=st.sampled_from([["HLA-A", "B2M"], ["HLA-A", "B2M"], ["B2M"], ["NOTAGENE"], [""]]),
    top=_often_unset(0, 1, 3, -1, "x"),
    n_samples=_often_unset(1, 2, 0, -1),
    batch=_often_unset(1, 3, 0, "1.5"),
    n_genes=_often_unset(4, 10, 0, -1),
    seed=_often_unset(0, 2, -1),
    context_key=st.sampled_from(["context"] * 5 + ["nope"]),
    strict=st.booleans(),
)  # fmt: skip
def test_screen_options_exit_cleanly(
    tmp_path_factory, pert, perts, contexts, program, top, n_samples, batch, n_genes, seed,
    context_key, strict,
):  # fmt: skip
    out = tmp_path_factory.mktemp("screen") / "out"
    argv = ["screen", pert["model"], pert["controls"], "--out", out, "--perturbations", *perts]
    argv += ["--context-key", context_key, "--program", *program]
    if contexts is not None:
        argv += ["--contexts", *contexts]
    for flag, value in (
        ("--top", top), ("--n-samples", n_samples), ("--batch-size", batch),
        ("--n-genes", n_genes), ("--seed", seed),
    ):  # fmt: skip
        if value is not None:
            argv += [flag, str(value)]
    if strict:
        argv.append("--strict")
    before = digest(pert["model"]), digest(pert["controls"])
    _exits_cleanly(argv, out)
    assert (digest(pert["model"]), digest(pert["controls"])) == before
