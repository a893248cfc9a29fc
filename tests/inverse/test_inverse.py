"""Inverse models (rank -> expression), reconstruction and metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.stats

import c2s
from c2s._errors import C2SError
from c2s.inverse import (
    InverseModel,
    LinearInverse,
    RankMeanInverse,
    evaluate,
    fit_inverse,
    make_model,
    reconstruct,
)
from c2s.metrics import pearson, r2_score, reconstruction_metrics, spearman
from c2s.sentences import CellSentences, Vocab


def line_sentences(a: float, b: float, lengths, n_genes=2000, seed=0) -> CellSentences:
    """Sentences whose values are a + b*log10(1+rank) below rank 999 and an outlier beyond."""
    rng = np.random.default_rng(seed)
    genes, values = [], []
    for n in lengths:
        genes.append(rng.permutation(n_genes)[:n])
        pos = np.arange(n)
        v = a + b * np.log10(1.0 + pos)
        v[pos >= 999] = 7.5  # far off the line: must be ignored by the fit
        values.append(v)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return CellSentences(
        np.concatenate(genes),
        offsets,
        Vocab.from_names([f"G{i}" for i in range(n_genes)]),
        values=np.concatenate(values).astype(np.float32),
    )


@pytest.fixture(scope="module")
def pbmc_dataset(tmp_path_factory, _pbmc):
    return c2s.io.convert(_pbmc, tmp_path_factory.mktemp("pbmc") / "ds", seed=0)


# ---------------------------------------------------------------------------------------
# linear
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("a", "b"), [(3.0, -0.9), (2.25, -0.5)])
def test_linear_recovers_slope_and_intercept(a, b):
    cs = line_sentences(a, b, lengths=[50, 400, 1500, 1200, 30, 999])
    m = LinearInverse(sample_size=None).fit(cs)
    assert m.slope == pytest.approx(b, abs=1e-5)
    assert m.intercept == pytest.approx(a, abs=1e-5)
    pos = np.array([0, 9, 99, 998])
    np.testing.assert_allclose(m.predict(pos), a + b * np.log10(1 + pos), atol=1e-5)
    # with the cutoff lifted the outliers pull the fit away
    loose = LinearInverse(sample_size=None, max_log_rank=10).fit(cs)
    assert abs(loose.slope - b) > 0.05


def test_linear_refuses_too_little_data():
    cs = line_sentences(1.0, -0.1, lengths=[1, 1, 1])
    with pytest.raises(C2SError, match="Too few"):
        LinearInverse().fit(cs)
    with pytest.raises(C2SError, match="not fitted"):
        LinearInverse().predict([0, 1])
    no_values = CellSentences(cs.genes, cs.offsets, cs.vocab)
    with pytest.raises(C2SError, match="values"):
        LinearInverse().fit(no_values)


# ---------------------------------------------------------------------------------------
# serialization
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["linear", "rank_mean"])
def test_to_dict_from_dict_round_trip(name, lognorm_sentences):
    m = make_model(name, seed=2).fit(lognorm_sentences)
    d = json.loads(json.dumps(m.to_dict()))
    back = InverseModel.from_dict(d)
    assert type(back) is type(m)
    pos = np.arange(0, 400)
    lens = np.linspace(1, 400, 400).astype(int)
    np.testing.assert_array_equal(back.predict(pos, lens), m.predict(pos, lens))
    np.testing.assert_array_equal(back.predict(pos), m.predict(pos))
    np.testing.assert_array_equal(
        back.predict_sentences(lognorm_sentences), m.predict_sentences(lognorm_sentences)
    )
    # the stored layout (datasets' metadata and c2s_config.json keep it): keys in this order
    keys = {
        "linear": ["model", "slope", "intercept", "sample_size", "max_log_rank", "seed"],
        "rank_mean": [
            "model", "n_length_bins", "n_rank_bins", "sample_size", "seed", "length_centers",
            "x", "y",
        ],
    }  # fmt: skip
    assert list(d) == keys[name] and d["model"] == name
    assert all(type(v) in (int, float, list, type(None)) for k, v in d.items() if k != "model")


def test_unknown_model_names():
    with pytest.raises(C2SError, match="Unknown inverse model"):
        make_model("spline")
    with pytest.raises(C2SError, match="Unknown inverse model"):
        InverseModel.from_dict({"model": "spline"})


# ---------------------------------------------------------------------------------------
# rank_mean and selection
# ---------------------------------------------------------------------------------------
def test_rank_mean_matches_bin_means_for_a_single_length():
    # every cell identical: the model's knots are the mean values of its rank bins
    cs = line_sentences(2.0, -0.6, lengths=[300] * 20)
    m = RankMeanInverse(n_length_bins=1, n_rank_bins=200, sample_size=None).fit(cs)
    pos = np.arange(300)
    truth = 2.0 - 0.6 * np.log10(1 + pos)
    np.testing.assert_allclose(m.predict(pos, np.full(300, 300)), truth, atol=0.02)
    assert m.length_centers.tolist() == [300.0]


def test_rank_mean_follows_sentence_length():
    # short cells have high values, long cells low ones at the same rank
    short = line_sentences(3.0, -0.5, lengths=[100] * 30, seed=1)
    long = line_sentences(1.5, -0.5, lengths=[800] * 30, seed=2)
    cs = CellSentences(
        np.concatenate([short.genes, long.genes]),
        np.concatenate([short.offsets, long.offsets[1:] + short.offsets[-1]]),
        short.vocab,
        values=np.concatenate([short.values, long.values]),
    )
    m = RankMeanInverse(n_length_bins=2, sample_size=None).fit(cs)
    pos = np.array([0, 10, 50])
    np.testing.assert_allclose(
        m.predict(pos, np.full(3, 100)), 3.0 - 0.5 * np.log10(1 + pos), atol=0.05
    )
    np.testing.assert_allclose(
        m.predict(pos, np.full(3, 800)), 1.5 - 0.5 * np.log10(1 + pos), atol=0.05
    )
    mid = m.predict(pos, np.full(3, 450))
    np.testing.assert_allclose(mid, 2.25 - 0.5 * np.log10(1 + pos), atol=0.05)


def test_fit_inverse_prefers_rank_mean_on_synthetic(lognorm_sentences):
    fit = fit_inverse(lognorm_sentences, seed=0)
    assert fit.selected == "rank_mean"
    assert isinstance(fit.model, RankMeanInverse)
    assert fit.metrics["rank_mean"]["r2"] > fit.metrics["linear"]["r2"]
    assert fit.n_train_cells + fit.n_heldout_cells == lognorm_sentences.n_cells
    assert fit.n_heldout_cells == lognorm_sentences.n_cells // 5
    d = json.loads(json.dumps(fit.to_dict()))
    assert d["selected"] == "rank_mean" and d["params"]["model"] == "rank_mean"
    only = fit_inverse(lognorm_sentences, model="linear")
    assert only.selected == "linear" and list(only.metrics) == ["linear"]
    from c2s.inverse import load_inverse

    assert load_inverse(fit) is fit.model  # a fit serves wherever inverse= is asked for


def test_fit_inverse_prefers_rank_mean_on_pbmc(pbmc_dataset):
    cs = pbmc_dataset.sentences()
    fit = fit_inverse(cs)
    assert fit.selected == "rank_mean"
    assert fit.metrics["rank_mean"]["r2"] > fit.metrics["linear"]["r2"] > 0.5
    # the held-out cells default to the dataset's validation + test split
    assert fit.n_heldout_cells == int((cs.obs["split"].astype(str) != "train").sum())


def test_fit_inverse_heldout_argument(lognorm_sentences):
    idx = np.arange(0, 400, 4)
    mask = np.zeros(400, dtype=bool)
    mask[idx] = True
    by_idx = fit_inverse(lognorm_sentences, heldout=idx)
    by_mask = fit_inverse(lognorm_sentences, heldout=mask)
    assert by_idx.n_heldout_cells == by_mask.n_heldout_cells == 100
    assert by_idx.metrics == by_mask.metrics
    # explicit metrics equal evaluate() on the held-out cells
    m = by_idx.candidates["linear"]
    assert by_idx.metrics["linear"] == evaluate(m, lognorm_sentences.take(idx))


# ---------------------------------------------------------------------------------------
# reconstruction
# ---------------------------------------------------------------------------------------
def test_reconstruct_is_sparse_and_aligned(lognorm_sentences):
    cs = lognorm_sentences
    model = RankMeanInverse().fit(cs)
    rec = reconstruct(cs, model)
    assert rec.shape == (cs.n_cells, len(cs.vocab))
    assert sp.issparse(rec.X) and rec.X.format == "csr" and rec.X.dtype == np.float32
    assert list(rec.var_names) == list(cs.vocab.genes)
    assert list(rec.var["display_name"]) == list(cs.vocab.display_names)
    assert list(rec.obs_names) == list(cs.obs.index)
    X = rec.X
    pred = model.predict_sentences(cs)
    for i in range(cs.n_cells):
        row = slice(X.indptr[i], X.indptr[i + 1])
        np.testing.assert_array_equal(X.indices[row], np.sort(cs.cell(i)))
        order = np.argsort(cs.cell(i))
        np.testing.assert_array_equal(X.data[row], pred[cs.offsets[i] : cs.offsets[i + 1]][order])


def test_reconstruct_clip_negative():
    cs = line_sentences(1.0, -1.0, lengths=[200, 50])
    model = LinearInverse(sample_size=None).fit(cs)
    assert (model.predict_sentences(cs) < 0).any()
    raw = reconstruct(cs, model)
    assert raw.X.data.min() < 0
    clipped = reconstruct(cs, model, clip_negative=True)
    assert clipped.X.data.min() > 0
    assert clipped.X.nnz == (model.predict_sentences(cs) > 0).sum()


def test_round_trip_on_pbmc(pbmc, pbmc_dataset):
    cs = pbmc_dataset.sentences()
    fit = fit_inverse(cs)
    rec = reconstruct(cs, fit.model)
    assert list(rec.var_names) == list(pbmc.var_names)
    assert list(rec.obs_names) == list(pbmc.obs_names)
    X = pbmc.X.toarray()
    R = rec.X.toarray()
    np.testing.assert_array_equal(R > 0, X > 0)
    expressed = X > 0
    assert r2_score(X[expressed], R[expressed]) > 0.8
    assert r2_score(X.ravel(), R.ravel()) > 0.8


def test_round_trip_through_text(pbmc, pbmc_dataset):
    """AnnData -> dataset -> text -> parsed sentences -> reconstructed expression."""
    fit = fit_inverse(pbmc_dataset.sentences())
    texts = pbmc_dataset.texts()
    parsed = CellSentences.from_text(texts, pbmc_dataset.vocab, obs=pbmc.obs)
    stored = pbmc_dataset.sentences()
    np.testing.assert_array_equal(parsed.genes, stored.genes)
    rec = reconstruct(parsed, fit.model).X.toarray()
    X = pbmc.X.toarray()
    np.testing.assert_array_equal(rec > 0, X > 0)
    assert r2_score(X[X > 0], rec[X > 0]) > 0.8


# ---------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------
def test_metrics_against_numpy_and_scipy():
    rng = np.random.default_rng(0)
    y = rng.choice([0.0, 0.5, 1.0, 1.5, 3.0], size=300)  # many ties
    p = y + rng.normal(scale=0.4, size=300)
    ss_res = ((y - p) ** 2).sum()
    ss_tot = ((y - y.mean()) ** 2).sum()
    assert r2_score(y, p) == pytest.approx(1 - ss_res / ss_tot, rel=1e-12)
    assert pearson(y, p) == pytest.approx(scipy.stats.pearsonr(y, p)[0], rel=1e-10)
    assert spearman(y, p) == pytest.approx(scipy.stats.spearmanr(y, p)[0], rel=1e-10)
    assert spearman(y, y.round()) == pytest.approx(scipy.stats.spearmanr(y, y.round())[0])
    out = reconstruction_metrics(y, p)
    assert out["n"] == 300 and out["r2"] == r2_score(y, p)
    assert r2_score(y, y) == 1.0
    assert r2_score(y, np.full_like(y, y.mean())) == pytest.approx(0.0, abs=1e-12)
    assert r2_score(y, -y) < 0


def test_metrics_constant_inputs_are_nan():
    c = np.ones(10)
    assert np.isnan(r2_score(c, np.arange(10)))
    assert np.isnan(pearson(c, np.arange(10)))
    assert np.isnan(spearman(np.arange(10), c))


def test_evaluate_needs_values(lognorm_sentences):
    m = LinearInverse().fit(lognorm_sentences)
    bare = CellSentences(
        lognorm_sentences.genes, lognorm_sentences.offsets, lognorm_sentences.vocab
    )
    with pytest.raises(C2SError, match="values"):
        evaluate(m, bare)
