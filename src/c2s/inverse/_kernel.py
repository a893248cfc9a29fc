"""Compiled reconstruction kernels (numba), parallel over cells."""

from __future__ import annotations

import numba
import numpy as np

from c2s.sentences._kernel import _radix_sort_desc


@numba.njit(cache=True, parallel=True, nogil=True)
def fill_values(offsets, lo, w, tables, out):
    """``out[j]`` for the q-th gene of cell i: table ``lo[i]`` (and ``lo[i] + 1`` weighted by
    ``w[i]``) at position q; positions past a table's end take its last value."""
    n_cells = offsets.shape[0] - 1
    last = tables.shape[1] - 1
    n_groups = tables.shape[0]
    for i in numba.prange(n_cells):
        a = offsets[i]
        g = lo[i]
        h = min(g + 1, n_groups - 1)
        wi = w[i]
        for q in range(offsets[i + 1] - a):
            p = min(q, last)
            out[a + q] = (1.0 - wi) * tables[g, p] + wi * tables[h, p]


@numba.njit(cache=True, parallel=True, nogil=True)
def sort_rows(offsets, genes, values, out_genes, out_values):
    """Per row, (gene, value) pairs in ascending gene order.

    Reuses the ranking kernel's stable radix sort: ascending gene index is descending
    ``0xFFFFFFFF - gene``, and the sort skips the digits that are constant in a row.
    """
    n_cells = offsets.shape[0] - 1
    for i in numba.prange(n_cells):
        a, b = offsets[i], offsets[i + 1]
        if b == a:
            continue
        keys = np.empty(b - a, dtype=np.uint32)
        for q in range(b - a):
            keys[q] = np.uint32(0xFFFFFFFF) - np.uint32(genes[a + q])
        order = _radix_sort_desc(keys, np.arange(b - a), 32)
        for q in range(b - a):
            out_genes[a + q] = genes[a + order[q]]
            out_values[a + q] = values[a + order[q]]
