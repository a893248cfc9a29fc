"""Perturbation response: predicted vs observed change of mean expression."""

from __future__ import annotations

import numpy as np

from c2s._errors import C2SError
from c2s.metrics._regression import pearson, spearman


def _mean(x) -> np.ndarray:
    from c2s.metrics._generation import as_matrix

    a = np.asarray(x, dtype=np.float64) if np.ndim(x) == 1 else as_matrix(x).mean(0)
    return np.asarray(a, dtype=np.float64).ravel()


def kendall_tau(x, y) -> float:
    """Kendall's tau-b rank correlation (``nan`` when either input is constant)."""
    from scipy.stats import kendalltau

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(kendalltau(x, y).statistic)


def perturbation_metrics(control, observed, predicted, *, top_n: int = 20) -> dict:
    """Agreement of the predicted and observed change from control.

    Each argument is a cells x genes matrix (the mean over cells is taken) or a vector of
    per-gene means, all on the same genes. With ``d_obs = mean(observed) - mean(control)``
    and ``d_pred = mean(predicted) - mean(control)``: Pearson, Spearman and Kendall's tau
    between the two on all genes and on the ``top_n`` genes with the largest ``|d_obs|``
    (the most differentially expressed), plus the index of those genes.
    """
    c, o, p = _mean(control), _mean(observed), _mean(predicted)
    if not len(c) == len(o) == len(p):
        raise C2SError(
            f"control, observed and predicted have {len(c)}, {len(o)} and {len(p)} genes; align "
            "them to the same genes first."
        )
    d_obs, d_pred = o - c, p - c
    top = np.argsort(-np.abs(d_obs), kind="stable")[: min(top_n, len(d_obs))]

    def block(a, b):
        return {
            "pearson": pearson(a, b),
            "spearman": spearman(a, b),
            "kendall_tau": kendall_tau(a, b),
        }

    return {
        "all_genes": block(d_obs, d_pred),
        f"top{top_n}_de": block(d_obs[top], d_pred[top]),
        "top_de_genes": top.tolist(),
        "n_genes": len(d_obs),
    }
