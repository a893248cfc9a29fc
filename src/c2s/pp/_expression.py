"""What kind of values an expression matrix holds, and log10 normalization."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from c2s._errors import C2SError

Kind = Literal["counts", "log-normalized", "scaled", "empty"]

TARGET_SUM = 1e4


@dataclass(frozen=True)
class ExpressionCheck:
    """Summary of a sample of rows: what the values look like."""

    kind: Kind
    min: float
    max: float
    n_rows_checked: int
    has_nan: bool

    def describe(self) -> str:
        return f"{self.kind} (min {self.min:.3g}, max {self.max:.3g}, {self.n_rows_checked} rows checked)"


def check_expression(X, *, n_rows: int | None = 1000) -> ExpressionCheck:
    """Tell raw counts, log-normalized values and scaled (centred) values apart.

    Parameters
    ----------
    X
        Cells x genes matrix (sparse or dense), or the first rows of one.
    n_rows
        Check only the first ``n_rows`` rows (``None``: all).

    Returns
    -------
    :class:`ExpressionCheck`: ``kind`` is ``"scaled"`` if any value is negative, ``"counts"``
    if every value is a non-negative integer, ``"log-normalized"`` otherwise.
    """
    if n_rows is not None:
        X = X[:n_rows]
    data = X.data if sp.issparse(X) else np.asarray(X).ravel()
    n = X.shape[0]
    if data.size == 0:
        return ExpressionCheck("empty", 0.0, 0.0, n, False)
    data = data.astype(np.float64, copy=False)
    finite = np.isfinite(data)
    has_nan = not finite.all()
    vals = data[finite]
    if vals.size == 0:
        return ExpressionCheck("empty", 0.0, 0.0, n, has_nan)
    lo, hi = float(vals.min()), float(vals.max())
    if lo < 0:
        kind: Kind = "scaled"
    elif np.all(vals == np.round(vals)):
        kind = "counts"
    else:
        kind = "log-normalized"
    return ExpressionCheck(kind, lo, hi, n, has_nan)


def require_rankable(check: ExpressionCheck, *, label: str, alternatives: list[str]) -> None:
    """Raise a helpful error when values cannot be ranked into cell sentences."""
    if check.has_nan:
        raise C2SError(f"{label} contains NaN or infinite values; remove or impute them first.")
    if check.kind == "scaled":
        hint = (
            f" This data has: {', '.join(alternatives)}."
            if alternatives
            else " Keep the log-normalized matrix before sc.pp.scale (e.g. in adata.raw or a layer)."
        )
        raise C2SError(
            f"{label} looks scaled (it has negative values, min {check.min:.3g}): cell sentences "
            "rank expressed genes (value > 0) and need unscaled expression. Use the "
            "log-normalized values instead: --raw / use_raw=True for adata.raw, or "
            f"--layer NAME / layer='NAME' for a layer.{hint}"
        )


def log10_normalize(X, *, target_sum: float = TARGET_SUM):
    """``log10(1 + x / total * target_sum)`` per row: the released C2S models' convention.

    Returns a float32 CSR matrix (sparse input) or array (dense input). Rows with no counts
    stay zero.
    """
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float32, copy=True)
        totals = np.asarray(X.sum(axis=1)).ravel()
        scale = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
        X.data *= np.repeat(scale, np.diff(X.indptr)).astype(np.float32)
        np.log10(X.data + np.float32(1), out=X.data)
        return X
    X = np.asarray(X, dtype=np.float32).copy()
    totals = X.sum(axis=1, keepdims=True)
    scale = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
    return np.log10(1 + X * scale).astype(np.float32)


def normalize(
    adata, *, target_sum: float = TARGET_SUM, layer: str | None = None, copy: bool = False
):
    """Normalize counts to ``target_sum`` per cell and apply ``log10(1 + x)``.

    This is the preprocessing the released Cell2Sentence models were trained with (base 10,
    not scanpy's natural log).

    Parameters
    ----------
    adata
        AnnData with raw counts in ``X`` (or ``layer``).
    target_sum
        Total per cell after scaling.
    layer
        Normalize this layer instead of ``X``.
    copy
        Return a modified copy instead of changing ``adata``.

    Returns
    -------
    ``None``, or the copy if ``copy=True``. Writes the normalized matrix in place of ``X``
    (or the layer) and records ``adata.uns["c2s"]["normalization"]``.
    """
    adata = adata.copy() if copy else adata
    X = adata.layers[layer] if layer is not None else adata.X
    check = check_expression(X)
    if check.kind != "counts":
        raise C2SError(
            f"normalize expects raw counts, but the data looks {check.describe()}. "
            "It may already be normalized; skip this step."
        )
    Y = log10_normalize(X, target_sum=target_sum)
    if layer is not None:
        adata.layers[layer] = Y
    else:
        adata.X = Y
    adata.uns.setdefault("c2s", {})["normalization"] = {
        "method": "log10(1 + x / total * target_sum)",
        "target_sum": target_sum,
    }
    return adata if copy else None


def qc(adata, *, min_genes: int = 200, min_cells: int = 3, copy: bool = False):
    """Basic QC: drop cells with fewer than ``min_genes`` expressed genes, then genes seen in
    fewer than ``min_cells`` cells.

    Returns
    -------
    ``None``, or the filtered copy if ``copy=True``. Adds ``obs["n_genes"]`` and
    ``var["n_cells"]``.
    """
    X = adata.X
    n_genes = np.asarray((X > 0).sum(axis=1)).ravel()
    keep_cells = n_genes >= min_genes
    if not keep_cells.any():
        raise C2SError(
            f"No cell has at least {min_genes} expressed genes; lower min_genes "
            f"(the largest is {int(n_genes.max()) if len(n_genes) else 0})."
        )
    sub = adata[keep_cells].copy() if (copy or not keep_cells.all()) else adata
    sub.obs["n_genes"] = n_genes[keep_cells]
    n_cells = np.asarray((sub.X > 0).sum(axis=0)).ravel()
    keep_genes = n_cells >= min_cells
    if not keep_genes.all():
        sub = sub[:, keep_genes].copy()
    sub.var["n_cells"] = n_cells[keep_genes]
    if copy:
        return sub
    if sub is not adata:
        adata._init_as_actual(sub)
    return None
