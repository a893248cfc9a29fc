"""Perturbation response: predicted vs observed change of mean expression."""

from __future__ import annotations

import numpy as np

from c2s._anndata import is_anndata
from c2s._deprecate import renamed
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


@renamed(top_k="n_overlap_genes")
def perturbation_metrics(
    control, observed, predicted, *, top_n: int = 20, n_overlap_genes: int = 50, seed: int = 0
) -> dict:
    """Agreement of the predicted and observed change from control.

    Each argument is a cells x genes matrix (the mean over cells is taken) or a vector of
    per-gene means, all on the same genes. With ``d_obs = mean(observed) - mean(control)``
    and ``d_pred = mean(predicted) - mean(control)``:

    - Pearson, Spearman and Kendall's tau between the two on all genes and on the ``top_n``
      genes with the largest ``|d_obs|`` (the most differentially expressed; their index is
      ``top_de_genes``), and the fraction of those genes whose change has the same sign;
    - ``top{n_overlap_genes}_up_overlap`` / ``_down_overlap``: the share of the
      ``n_overlap_genes`` genes with the largest (smallest) ``d_obs`` that are also among the
      ``n_overlap_genes`` largest (smallest) ``d_pred`` (``top_k=`` is the old name of
      ``n_overlap_genes``);
    - when observed and predicted are both cells x genes matrices (two cells or more):
      ``mmd`` (RBF kernel, bandwidth by the median heuristic on the observed cells) and
      ``energy_distance`` between the cells, in a PCA space fit on the observed cells.
    """
    c, o, p = _mean(control), _mean(observed), _mean(predicted)
    if not len(c) == len(o) == len(p):
        raise C2SError(
            f"control, observed and predicted have {len(c)}, {len(o)} and {len(p)} genes; align "
            "them to the same genes first."
        )
    d_obs, d_pred = o - c, p - c
    top = np.argsort(-np.abs(d_obs), kind="stable")[: min(top_n, len(d_obs))]
    k = min(n_overlap_genes, len(d_obs))

    def block(a, b):
        return {
            "pearson": pearson(a, b),
            "spearman": spearman(a, b),
            "kendall_tau": kendall_tau(a, b),
        }

    def overlap(a, b) -> float:
        return len(set(a[:k].tolist()) & set(b[:k].tolist())) / k if k else float("nan")

    out = {
        "all_genes": block(d_obs, d_pred),
        f"top{top_n}_de": {
            **block(d_obs[top], d_pred[top]),
            "sign_agreement": float(np.mean(np.sign(d_obs[top]) == np.sign(d_pred[top]))),
        },
        f"top{n_overlap_genes}_up_overlap": overlap(
            np.argsort(-d_obs, kind="stable"), np.argsort(-d_pred, kind="stable")
        ),
        f"top{n_overlap_genes}_down_overlap": overlap(
            np.argsort(d_obs, kind="stable"), np.argsort(d_pred, kind="stable")
        ),
        "top_de_genes": top.tolist(),
        "n_genes": len(d_obs),
    }
    if _cells(observed) and _cells(predicted):
        from c2s.metrics._generation import (
            energy_distance,
            median_bandwidth,
            mmd_rbf,
            pca_space,
        )

        f = pca_space(observed, 50, seed)
        xo, xp = f(observed), f(predicted)
        out["mmd"] = mmd_rbf(xo, xp, bandwidth=median_bandwidth(xo, seed=seed), seed=seed)
        out["energy_distance"] = energy_distance(xo, xp, seed=seed)
    return out


def _cells(x) -> bool:
    """A cells x genes matrix of two cells or more (not a vector of means)."""
    shape = getattr(x.X if is_anndata(x) else x, "shape", np.shape(x))
    return len(shape) == 2 and shape[0] >= 2
