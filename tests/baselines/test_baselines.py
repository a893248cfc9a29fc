"""Baselines: labels that come back on separable data and on PBMC, exact class means,
resampled cells that are real cells of the right label."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from c2s import baselines as B
from c2s._errors import C2SError
from c2s.metrics import accuracy


def blobs(n=90, d=30, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(["a", "b", "c"], n // 3)
    X = rng.normal(0, 1, (n, d)) + 4 * (y[:, None] == np.array(["a", "b", "c"])).repeat(10, 1)
    return np.abs(X), y


def test_classifiers_recover_separable_labels():
    X, y = blobs()
    Xt, yt = blobs(seed=1)
    assert accuracy(yt, B.logistic_regression(sp.csr_matrix(X), y, sp.csr_matrix(Xt))) == 1.0
    assert accuracy(yt, B.knn_pca(X, y, Xt, k=5)) == 1.0
    pred, proba, classes = B.logistic_regression(X, y, Xt, return_proba=True)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert classes == ["a", "b", "c"] and (np.asarray(classes)[proba.argmax(1)] == pred).all()


def test_pbmc_baselines_on_the_dataset_split(pbmc_dataset):
    Xtr, obs_tr = B.expression(pbmc_dataset, split="train")
    Xte, obs_te = B.expression(pbmc_dataset, split="test")
    assert Xtr.shape == (len(obs_tr), len(pbmc_dataset.vocab)) and sp.issparse(Xtr)
    ytr, yte = obs_tr["cell_type"].astype(str), obs_te["cell_type"].astype(str)
    majority = yte.value_counts(normalize=True).iloc[0]
    lr = accuracy(yte, B.logistic_regression(Xtr, ytr, Xte))
    assert lr > 0.7 and lr > majority + 0.3  # far above always answering the commonest type


def test_generation_baselines():
    X, y = blobs()
    want = ["b", "a", "b", "b"]
    means = B.class_mean_cells(X, y, want)
    np.testing.assert_allclose(means[0], X[y == "b"].mean(0))
    np.testing.assert_allclose(means[1], X[y == "a"].mean(0))
    draws = B.resampled_cells(X, y, ["a"] * 40, seed=3)  # more than the 30 "a" cells
    rows = [int(np.flatnonzero((r == X).all(1))[0]) for r in draws]
    assert all(y[i] == "a" for i in rows)
    assert len(set(rows[:30])) == 30  # no repeat until every "a" cell was drawn once
    assert (B.resampled_cells(X, y, want, seed=3) == B.resampled_cells(X, y, want, seed=3)).all()
    with pytest.raises(C2SError, match="No training cells"):
        B.class_mean_cells(X, y, ["zzz"])
    # sparse cells give the same rows, and stay sparse where rows are drawn
    S = sp.csr_matrix(X)
    np.testing.assert_allclose(B.class_mean_cells(S, y, want), means)
    sparse_draws = B.resampled_cells(S, y, ["a"] * 40, seed=3)
    assert sp.issparse(sparse_draws)
    np.testing.assert_array_equal(sparse_draws.toarray(), draws)


def test_resampled_cells_are_the_same_in_every_process():
    """String hashing differs between processes; the draw must not depend on it."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np; from c2s.baselines import resampled_cells; "
        "X = np.arange(40)[:, None]; y = np.array(list('abcd') * 10); "
        "print(resampled_cells(X, y, list('dcba') * 3, seed=0)[:, 0].tolist())"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": str(h)},
        ).stdout
        for h in (1, 2, 3)
    }
    assert len(outs) == 1
