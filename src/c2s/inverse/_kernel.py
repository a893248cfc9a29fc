"""Compiled reconstruction kernels (numba), parallel over cells."""

from __future__ import annotations

import numba


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
