"""Metrics against hand-computed values, closed forms and independent implementations."""

from __future__ import annotations

import numpy as np
import pytest

from c2s import metrics as M


# -- annotation ------------------------------------------------------------------------------
def test_annotation_by_hand():
    t = ["a", "a", "b", "b", "c"]
    p = ["a", "b", "b", "b", "a"]
    assert M.accuracy(t, p) == pytest.approx(3 / 5)
    # a: P 1/2 R 1/2 F 1/2; b: P 2/3 R 1 F 4/5; c: never predicted, F 0
    assert M.macro_f1(t, p) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert M.balanced_accuracy(t, p) == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    cm = M.confusion_matrix(t, p)
    assert cm.loc["a"].tolist() == [1, 1, 0] and cm.loc["b"].tolist() == [0, 2, 0]
    assert cm.loc["c"].tolist() == [1, 0, 0]
    rep = M.classification_report(t, p)
    assert rep.loc["b", "precision"] == pytest.approx(2 / 3) and rep.loc["c", "support"] == 1


def test_perfect_predictor_and_labels_outside_the_set():
    t = list("abcabc")
    m = M.annotation_metrics(t, t)
    assert m["accuracy"] == m["macro_f1"] == m["balanced_accuracy"] == 1.0
    cm = M.confusion_matrix(t, ["a", "b", "zzz", "a", "b", "c"], labels=["a", "b", "c"])
    assert list(cm.columns) == ["a", "b", "c", "(other)"] and cm.loc["c", "(other)"] == 1


@pytest.mark.filterwarnings("ignore:y_pred contains classes")
def test_annotation_matches_scikit_learn():
    from sklearn import metrics as skm

    rng = np.random.default_rng(0)
    t = rng.choice(list("abcde"), 300)
    p = np.where(rng.random(300) < 0.6, t, rng.choice(list("abcdef"), 300))
    assert M.macro_f1(t, p) == pytest.approx(skm.f1_score(t, p, average="macro"))
    assert M.balanced_accuracy(t, p) == pytest.approx(skm.balanced_accuracy_score(t, p))
    labels = sorted(set(t) | set(p))
    np.testing.assert_array_equal(
        M.confusion_matrix(t, p, labels=labels).to_numpy(),
        skm.confusion_matrix(t, p, labels=labels),
    )


# -- generated vs real ---------------------------------------------------------------------------
def clusters(n=120, d=20, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(["x", "y", "z"], n // 3)
    centers = rng.normal(0, 3, (3, d))
    X = centers[np.searchsorted(["x", "y", "z"], y)] + rng.normal(0, 1, (n, d))
    return X, y


def test_identical_sets_are_at_distance_zero():
    from sklearn.neighbors import KNeighborsClassifier

    X, y = clusters()
    assert M.mmd_rbf(X, X) == pytest.approx(0, abs=1e-12)
    assert M.energy_distance(X, X) == pytest.approx(0, abs=1e-9)
    assert M.wasserstein(X, X) == pytest.approx(0, abs=1e-9)
    assert M.scfid(X, X) == pytest.approx(0, abs=1e-6)
    assert M.gromov_wasserstein(X, X) == pytest.approx(0, abs=1e-6)
    Z = M.pca_space(X)(X)
    for k, acc in M.knn_accuracy(X, y, X, y).items():  # the real classifier's own accuracy
        assert acc == pytest.approx(KNeighborsClassifier(n_neighbors=k).fit(Z, y).score(Z, y))


def test_distances_grow_with_a_shift():
    X, _ = clusters()
    e = np.zeros(X.shape[1])
    e[0] = 1.0
    for f in (M.mmd_rbf, M.energy_distance, M.wasserstein, M.scfid):
        small, big = f(X, X + 0.5 * e), f(X, X + 3.0 * e)
        assert 0 < small < big, f.__name__
    # Gromov-Wasserstein sees shapes, not positions: a shift is free, a stretch is not
    assert M.gromov_wasserstein(X, X + 5.0) == pytest.approx(0, abs=1e-6)
    stretch = np.ones(X.shape[1])
    stretch[:3] = 4.0
    assert M.gromov_wasserstein(X, X * stretch) > 1e-3


def test_frechet_distance_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 1.0])
    closed = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
    assert M.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(closed)
    rng = np.random.default_rng(1)
    a = mu1 + rng.normal(size=(40000, 3)) * np.sqrt(s1)
    b = mu2 + rng.normal(size=(40000, 3)) * np.sqrt(s2)
    assert M.scfid(a, b, embed=lambda x: x) == pytest.approx(closed, rel=0.03)


def test_knn_accuracy_of_mislabelled_cells_is_zero():
    X, y = clusters()
    wrong = np.roll(y, len(y) // 3)  # every cell labelled as another cluster
    assert all(v == 0.0 for v in M.knn_accuracy(X, y, X, wrong, ks=(3, 5)).values())
    m = M.generation_metrics(X, y, X, y)
    assert m["knn_accuracy"][10] == 1.0 and m["mmd"] == pytest.approx(0, abs=1e-12)


def test_gene_rates_and_overlap():
    assert M.gene_validity(["A B C", "A Z"], ["a", "b", "c"]) == pytest.approx(4 / 5)
    assert M.gene_uniqueness([["A", "A", "B", "C"], ["A", "B"]]) == pytest.approx((3 / 4 + 1) / 2)
    real = ["A B C", "A B D", "E F G"]
    labels = ["t", "t", "u"]
    assert M.top_gene_overlap(real, labels, real, labels, n_top=3)["mean"] == 1.0
    half = M.top_gene_overlap(["A X Y", "E F G"], ["t", "u"], real, labels, n_top=2)
    assert half["t"] == 0.5 and half["u"] == 1.0


def test_mismatched_inputs_say_what_is_wrong():
    from c2s._errors import C2SError

    with pytest.raises(C2SError, match="same genes"):
        M.mmd_rbf(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(C2SError, match="pair up"):
        M.accuracy(["a"], ["a", "b"])


# -- perturbation --------------------------------------------------------------------------------
def test_perturbation_metrics():
    rng = np.random.default_rng(0)
    control = rng.normal(size=(50, 40))
    shift = np.zeros(40)
    shift[[3, 7, 11]] = [5.0, -4.0, 3.0]
    observed = control + shift + rng.normal(0, 0.1, (50, 40))
    perfect = M.perturbation_metrics(control, observed, observed, top_n=3)
    assert sorted(perfect["top_de_genes"]) == [3, 7, 11]
    for block in ("all_genes", "top3_de"):
        assert perfect[block]["pearson"] == pytest.approx(1.0)
        assert perfect[block]["kendall_tau"] == pytest.approx(1.0)
    reverse = M.perturbation_metrics(
        control.mean(0), observed.mean(0), 2 * control.mean(0) - observed.mean(0)
    )
    assert reverse["all_genes"]["spearman"] == pytest.approx(-1.0)
    assert M.kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    # cells on both sides: distances between the predicted and observed cells
    assert perfect["mmd"] == pytest.approx(0, abs=1e-12) and perfect["energy_distance"] < 1e-9
    far = M.perturbation_metrics(control, observed, control, top_n=3)
    assert far["mmd"] > 0.1 and far["energy_distance"] > 1
    assert "mmd" not in reverse  # means only: no cells to compare


def test_perturbation_overlap_genes_and_their_old_name():
    """``n_overlap_genes`` sets how many most-changed genes the up/down overlaps compare;
    ``top_k=``, its old name, still works with a warning that names the new one."""
    from c2s._errors import C2SError

    rng = np.random.default_rng(1)
    control, observed, predicted = (rng.normal(size=(6, 30)) for _ in range(3))
    new = M.perturbation_metrics(control, observed, predicted, n_overlap_genes=7)
    assert "top7_up_overlap" in new and "top7_down_overlap" in new
    assert "top50_up_overlap" in M.perturbation_metrics(control, observed, predicted)
    with pytest.warns(FutureWarning, match="top_k= is now called n_overlap_genes="):
        old = M.perturbation_metrics(control, observed, predicted, top_k=7)
    assert old["top7_up_overlap"] == new["top7_up_overlap"]
    with pytest.raises(C2SError, match="Give n_overlap_genes= only"):
        M.perturbation_metrics(control, observed, predicted, top_k=7, n_overlap_genes=7)


def test_perturbation_overlaps_and_signs_by_hand():
    control = np.zeros(4)
    observed = np.array([3.0, -2.0, 1.0, 0.0])  # d_obs
    predicted = np.array([2.0, -1.0, 0.0, 1.0])  # d_pred
    m = M.perturbation_metrics(control, observed, predicted, top_n=2, n_overlap_genes=2)
    # up: observed {0, 2}, predicted {0, 3}; down: observed {1, 3}, predicted {1, 2}
    assert m["top2_up_overlap"] == 0.5 and m["top2_down_overlap"] == 0.5
    assert m["top_de_genes"] == [0, 1] and m["top2_de"]["sign_agreement"] == 1.0
    one = M.perturbation_metrics(control, observed, predicted, top_n=3, n_overlap_genes=1)
    assert one["top1_up_overlap"] == 1.0 and one["top1_down_overlap"] == 1.0
    assert one["top3_de"]["sign_agreement"] == pytest.approx(2 / 3)  # gene 2: +1 vs 0
    # Pearson of (3, -2, 1, 0) and (2, -1, 0, 1), by hand: both means 0.5, centred
    # (2.5, -2.5, 0.5, -0.5) and (1.5, -1.5, -0.5, 0.5): 7 / sqrt(13 * 5)
    assert one["all_genes"]["pearson"] == pytest.approx(7 / np.sqrt(13 * 5))


# -- text ----------------------------------------------------------------------------------------
def test_text_similarity_with_an_encoder_and_without_a_model(tmp_path):
    words = ["t", "cells", "b", "monocytes", "nk", "blood"]

    def bag(texts):
        return np.array([[t.lower().split().count(w) for w in words] for t in texts], dtype=float)

    same = M.text_similarity(["T cells in blood"], ["t CELLS in blood"], encoder=bag)
    assert same["cosine_mean"] == pytest.approx(1.0) and same["token_f1"] == pytest.approx(1.0)
    other = M.text_similarity(["B cells"], ["NK monocytes"], encoder=bag)
    assert other["cosine_mean"] == pytest.approx(0.0) and other["token_f1"] == 0.0
    assert M.token_f1(["a b c d"], ["a b x"]) == pytest.approx(
        2 * (2 / 4) * (2 / 3) / (2 / 4 + 2 / 3)
    )
    with pytest.warns(UserWarning, match="skipped"):
        assert M.text_similarity(["a"], ["b"], model="nobody/no-such-model") is None


def test_mmd_uses_one_kernel_for_every_compared_set():
    """The bandwidth comes from the real cells alone: sets compared with the same real cells
    are measured with the same kernel (a pooled median heuristic changed it per set)."""
    X, y = clusters()
    rng = np.random.default_rng(1)
    near, far = X + rng.normal(0, 0.1, X.shape), X + 5.0
    a = M.generation_metrics(X, y, near, y, with_ot=False)
    b = M.generation_metrics(X, y, far, y, with_ot=False)
    assert a["mmd_bandwidth"] == b["mmd_bandwidth"] > 0
    f = M.pca_space(X, 50, 0)
    s = M.median_bandwidth(f(X))
    assert a["mmd_bandwidth"] == pytest.approx(s)
    assert b["mmd"] == pytest.approx(M.mmd_rbf(f(X), f(far), bandwidth=s))
    assert M.mmd_rbf(X, far) == pytest.approx(M.mmd_rbf(X, far, bandwidth=M.median_bandwidth(X)))
    assert a["mmd"] < b["mmd"]


def test_bootstrap_intervals_match_a_slow_resampling():
    rng = np.random.default_rng(3)
    t = rng.choice(["a", "b", "c", "d"], size=69, p=[0.5, 0.3, 0.15, 0.05])
    p = np.where(rng.random(69) < 0.7, t, rng.choice(["a", "b", "c", "d"], size=69))
    got = M.bootstrap_intervals(t, p, n_boot=200, seed=5)
    r = np.random.default_rng(5)
    acc, f1 = [], []
    for _ in range(200):
        i = r.integers(0, 69, 69)
        acc.append(M.accuracy(t[i], p[i]))
        f1.append(M.macro_f1(t[i], p[i]))
    want_acc = tuple(np.percentile(acc, [2.5, 97.5]))
    want_f1 = tuple(np.percentile(f1, [2.5, 97.5]))
    np.testing.assert_allclose(got["accuracy"], want_acc)
    np.testing.assert_allclose(got["macro_f1"], want_f1)
    lo, hi = got["accuracy"]
    assert lo < M.accuracy(t, p) < hi and hi - lo > 0.1  # 69 cells: a wide interval


def test_sparse_cells_are_projected_without_densifying_and_as_dense_ones(monkeypatch):
    """The PCA space of a sparse matrix (implicit centring, projected in blocks) keeps the
    same distances as the dense fit; a fit on a sample of cells still spans the clusters."""
    import scipy.sparse as sp
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(0)
    X = rng.poisson(0.3, (300, 80)).astype(float) * rng.uniform(1, 3, 80)
    X[:150, :10] += 4.0  # two groups
    S = sp.csr_matrix(X)
    dense, sparse = M.pca_space(X, 5, 0)(X), M.pca_space(S, 5, 0)(S)
    assert sparse.shape == (300, 5)
    np.testing.assert_allclose(pdist(sparse), pdist(dense), rtol=1e-6, atol=1e-8)
    monkeypatch.setattr("c2s.metrics._generation._BLOCK", 7)  # many blocks, same projection
    np.testing.assert_allclose(M.pca_space(S, 5, 0)(S), sparse)
    sampled = M.pca_space(S, 2, 0, max_cells=60)(S)
    gap = np.linalg.norm(sampled[:150].mean(0) - sampled[150:].mean(0))
    assert gap > 3 * sampled[:150].std(0).max()
