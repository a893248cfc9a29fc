"""Annotation and generation baselines (see the package docstring)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from c2s._deprecate import renamed
from c2s._errors import C2SError
from c2s.metrics import as_matrix


@renamed(top_k="n_genes")
def expression(dataset, *, split: str | None = None, rows=None, n_genes: int | None = None):
    """``(X, obs)``: a dataset's stored expression as a cells x vocabulary CSR matrix.

    ``n_genes`` keeps each cell's first ``n_genes`` genes (the view a C2S model of that
    sentence length gets; ``top_k=``, its old name, still works, warned). A dataset converted without values has none to give: convert again with
    values (the default), or compare on reconstructed expression.
    """
    if not dataset.has_values:
        raise C2SError(
            f"The dataset at {dataset.path} stores ranks only (converted with "
            "with_values=False); baselines need its expression values. Convert it again with "
            "values (the default)."
        )
    cs = dataset.sentences(split=split, rows=rows, n_genes=n_genes)
    return cs.to_csr(), cs.obs


def _xy(X, y):
    y = np.asarray([str(v) for v in y])
    if X.shape[0] != len(y):
        raise C2SError(f"{X.shape[0]} cells but {len(y)} labels.")
    if len(np.unique(y)) < 2:
        raise C2SError("A classifier needs at least two labels among the training cells.")
    return y


def logistic_regression(
    train_X,
    train_y: Sequence,
    test_X,
    *,
    C: float = 1.0,
    max_iter: int = 1000,
    return_proba: bool = False,
):
    """Predicted labels of ``test_X`` (and, with ``return_proba``, ``(labels, proba, classes)``)
    from a logistic regression on ``train_X`` (log-normalized expression, dense or sparse).

    Genes are scaled to unit variance without centring (sparse input stays sparse), as
    CellTypist does before its logistic regression.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = _xy(train_X, train_y)
    clf = make_pipeline(
        StandardScaler(with_mean=False), LogisticRegression(C=C, max_iter=max_iter)
    ).fit(train_X, y)
    pred = clf.predict(test_X)
    if return_proba:
        return pred, clf.predict_proba(test_X), list(clf.classes_)
    return pred


def knn_pca(
    train_X, train_y: Sequence, test_X, *, k: int = 15, n_components: int = 50, seed: int = 0
):
    """Predicted labels of ``test_X``: majority vote of the ``k`` nearest training cells in a
    PCA space (``n_components``) fit on ``train_X``."""
    from sklearn.neighbors import KNeighborsClassifier

    from c2s.metrics import pca_space

    y = _xy(train_X, train_y)
    f = pca_space(train_X, n_components, seed)
    clf = KNeighborsClassifier(n_neighbors=min(k, len(y))).fit(f(train_X), y)
    return clf.predict(f(test_X))


def _by_label(train_y, labels):
    y = np.asarray([str(v) for v in train_y])
    missing = sorted({str(lab) for lab in labels} - set(y))
    if missing:
        raise C2SError(f"No training cells for {missing}; cannot build baseline cells for them.")
    return y


def class_mean_cells(train_X, train_y: Sequence, labels: Sequence) -> np.ndarray:
    """One row per entry of ``labels``: the mean of the training cells with that label
    (sparse input is averaged without densifying it)."""
    y = _by_label(train_y, labels)
    X = as_matrix(train_X, keep_sparse=True)
    means = {
        lab: np.asarray(X[y == lab].mean(0), dtype=np.float64).ravel()
        for lab in {str(v) for v in labels}
    }
    if not len(labels):
        return np.zeros((0, X.shape[1]))
    return np.vstack([means[str(lab)] for lab in labels])


def resampled_cells(train_X, train_y: Sequence, labels: Sequence, *, seed: int = 0):
    """One row per entry of ``labels``: a training cell with that label drawn at random
    (without replacement while the label's cells last); sparse input gives sparse rows."""
    y = _by_label(train_y, labels)
    X = as_matrix(train_X, keep_sparse=True)
    rng = np.random.default_rng(seed)
    pools = {
        lab: list(rng.permutation(np.flatnonzero(y == lab)))
        for lab in sorted({str(v) for v in labels})  # sorted: set order varies by process
    }
    rows = []
    for lab in labels:
        pool = pools[str(lab)]
        if not pool:
            pools[str(lab)] = pool = list(rng.permutation(np.flatnonzero(y == str(lab))))
        rows.append(pool.pop())
    return X[np.asarray(rows, dtype=np.int64)] if rows else X[:0]
