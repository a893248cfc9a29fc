"""Ranking expression matrices into cell sentences (ragged integer arrays)."""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from c2s._deprecate import renamed
from c2s._errors import C2SError


class Ranked(NamedTuple):
    """Ragged ranked rows: row ``i`` is ``genes[offsets[i]:offsets[i+1]]``."""

    genes: np.ndarray  # int32, vocabulary (column) indices in rank order
    values: np.ndarray  # float32, expression values in the same order
    offsets: np.ndarray  # int64, length n_rows + 1
    n_expressed: np.ndarray  # int64, per-gene count of rows with value > 0


def _as_csr(X) -> sp.csr_matrix:
    if sp.issparse(X):
        X = X.tocsr() if X.format != "csr" else X
        return X
    X = np.asarray(X)
    if X.ndim != 2:
        raise C2SError(f"Expected a 2-D cells x genes matrix, got an array of shape {X.shape}.")
    return sp.csr_matrix(X)


def _kernel_dtype(data: np.ndarray) -> np.ndarray:
    """float32 when that is lossless (the fast path), float64 otherwise."""
    if data.dtype == np.float32:
        return data
    if data.dtype.kind in "iub":
        # Counts: exact in float32 up to 2^24.
        if data.size == 0 or np.abs(data).max() < 2**24:
            return data.astype(np.float32)
        return data.astype(np.float64)
    data64 = data.astype(np.float64, copy=False)
    data32 = data64.astype(np.float32)
    if np.array_equal(data32, data64):
        return data32
    return data64


def _raise_bad(data: np.ndarray):
    if not np.isfinite(data).all():
        raise C2SError(
            "The expression matrix contains NaN or infinite values; remove or impute them first."
        )
    raise C2SError(
        f"The expression matrix has negative values (min {data.min():.3g}): it looks scaled. "
        "Cell sentences rank expressed genes (value > 0) and need unscaled, e.g. "
        "log-normalized, expression (adata.raw or a layer)."
    )


@renamed(top_k="n_genes")
def rank(
    X,
    *,
    seed: int = 0,
    n_genes: int | None = None,
    row_offset: int = 0,
) -> Ranked:
    """Rank each row of ``X`` (cells x genes) into a cell sentence.

    Parameters
    ----------
    X
        CSR, CSC or dense matrix of non-negative expression values.
    seed
        Seed of the tie-breaking permutation.
    n_genes
        Keep only the ``n_genes`` highest ranked genes of each cell (exact partial
        selection; default: every expressed gene).
    row_offset
        Global index of the first row: the tie-breaking stream of a row depends only on
        ``(seed, row_offset + i)``, so chunked ranking equals ranking the whole matrix.

    Returns
    -------
    :class:`Ranked` with int32 genes, float32 values, int64 offsets and per-gene counts of
    expressing cells.
    """
    X = _as_csr(X)
    return rank_csr(
        X.indptr, X.indices, X.data, X.shape[1], seed=seed, n_genes=n_genes, row_offset=row_offset
    )


def _refuse_old_columns_keyword(fn):
    """``rank_csr``'s 4th argument was ``n_genes`` (the matrix's columns) and is now the
    positional-only ``n_vars``, while ``n_genes=`` now means genes per sentence: a call in the
    old form (``n_genes=`` and no 4th argument, or ``n_vars=`` by keyword) is refused with
    what to change, not read with the new meaning."""

    @functools.wraps(fn)
    def inner(*args, **kwargs):
        if len(args) == 3 and ("n_genes" in kwargs or "n_vars" in kwargs):
            raise C2SError(
                "rank_csr takes the matrix's number of columns as its 4th argument, by position "
                "(n_vars): rank_csr(indptr, indices, data, n_vars, n_genes=...). n_genes= is now "
                "the genes kept per sentence (top_k=, its old name); before this release "
                "n_genes= was the number of columns."
            )
        return fn(*args, **kwargs)

    return inner


@_refuse_old_columns_keyword
@renamed(top_k="n_genes")
def rank_csr(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    n_vars: int,
    /,
    *,
    seed: int = 0,
    n_genes: int | None = None,
    row_offset: int = 0,
) -> Ranked:
    """:func:`rank` on the raw arrays of a CSR matrix with ``n_vars`` columns (no scipy
    object, no copies)."""
    import numba

    from c2s.sentences import _kernel

    if n_genes is not None and n_genes < 1:
        raise C2SError(f"n_genes must be a positive number of genes, got {n_genes}.")
    if seed < 0:
        raise C2SError(f"seed must be a non-negative integer, got {seed}.")
    n_rows = len(indptr) - 1
    indptr = np.asarray(indptr).astype(np.int64, copy=False)
    if indptr[0] != 0:
        indptr = indptr - indptr[0]
    indices = np.asarray(indices)  # int32 or int64: numba specializes on either
    data = _kernel_dtype(np.asarray(data))
    if data.dtype == np.float32:
        bits, signbit, nbits = data.view(np.uint32), np.uint32(1 << 31), 32
        badbits = np.uint32(0x7F800000)  # +inf; NaNs lie above it, negatives above signbit
    else:
        bits, signbit, nbits = data.view(np.uint64), np.uint64(1 << 63), 64
        badbits = np.uint64(0x7FF0000000000000)
    # Room for every stored entry (or n_genes of them); rows storing zeros fill less, and are
    # compacted afterwards. This needs no pass over the values before ranking.
    nnz = np.diff(indptr)
    room = nnz if n_genes is None else np.minimum(nnz, n_genes)
    offsets = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(room, out=offsets[1:])
    count = np.empty(n_rows, dtype=np.int64)
    genes = np.empty(offsets[-1], dtype=np.int32)
    out_bits = np.empty(offsets[-1], dtype=bits.dtype)
    n_threads = numba.get_num_threads()
    expressed = np.zeros((n_threads, n_vars), dtype=np.int32)
    n_bad = np.zeros(n_threads, dtype=np.int64)
    # Hand out rows in small chunks: when another thread (the Parquet writer) holds a core,
    # a static split would leave the whole call waiting on the slowed half.
    previous = numba.set_parallel_chunksize(64)
    try:
        _kernel.rank_rows(
            indptr,
            indices,
            bits,
            signbit,
            badbits,
            nbits,
            np.uint64(seed),
            np.int64(row_offset),
            offsets,
            count,
            genes,
            out_bits,
            expressed,
            n_bad,
        )
    finally:
        numba.set_parallel_chunksize(previous)
    if n_bad.any():
        _raise_bad(data)
    if (count < room).any():  # stored zeros: keep each row's filled part
        keep = np.arange(offsets[-1]) - np.repeat(offsets[:-1], room) < np.repeat(count, room)
        genes, out_bits = genes[keep], out_bits[keep]
        offsets = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(count, out=offsets[1:])
    values = out_bits.view(data.dtype).astype(np.float32, copy=False)
    n_expressed = expressed.sum(axis=0, dtype=np.int64)
    return Ranked(genes, values, offsets, n_expressed)
