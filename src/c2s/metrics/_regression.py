"""Agreement between reconstructed and original expression."""

from __future__ import annotations

import numpy as np


def r2_score(y_true, y_pred) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` (may be negative)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    ss_tot = ((y_true - y_true.mean()) ** 2).sum()
    if ss_tot == 0:
        return float("nan")
    return float(1.0 - ((y_true - y_pred) ** 2).sum() / ss_tot)


def pearson(x, y) -> float:
    """Pearson correlation (``nan`` when either input is constant)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xc, yc = x - x.mean(), y - y.mean()
    den = np.sqrt((xc**2).sum() * (yc**2).sum())
    return float((xc * yc).sum() / den) if den > 0 else float("nan")


def spearman(x, y) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    from scipy.stats import rankdata

    return pearson(rankdata(x), rankdata(y))


def reconstruction_metrics(y_true, y_pred) -> dict[str, float]:
    """R^2, Pearson and Spearman between original and reconstructed values."""
    return {
        "r2": r2_score(y_true, y_pred),
        "pearson": pearson(y_true, y_pred),
        "spearman": spearman(y_true, y_pred),
        "n": len(y_true),
    }
