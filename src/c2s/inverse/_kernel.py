"""Compiled reconstruction kernels (numba), parallel over cells."""

from __future__ import annotations

import numba
import numpy as np


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
    """Per row, (gene, value) pairs in ascending gene order (LSD radix, 11-bit digits)."""
    n_cells = offsets.shape[0] - 1
    for i in numba.prange(n_cells):
        a, b = offsets[i], offsets[i + 1]
        n = b - a
        if n == 0:
            continue
        g = genes[a:b].copy()
        v = values[a:b].copy()
        hi = 0
        for q in range(n):
            hi = max(hi, g[q])
        g2 = np.empty_like(g)
        v2 = np.empty_like(v)
        counts = np.empty(2048, dtype=np.int64)
        shift = 0
        while (hi >> shift) > 0 or shift == 0:
            counts[:] = 0
            for q in range(n):
                counts[(g[q] >> shift) & 2047] += 1
            total = 0
            for d in range(2048):
                c = counts[d]
                counts[d] = total
                total += c
            for q in range(n):
                d = (g[q] >> shift) & 2047
                dst = counts[d]
                counts[d] = dst + 1
                g2[dst] = g[q]
                v2[dst] = v[q]
            g, g2 = g2, g
            v, v2 = v2, v
            shift += 11
        out_genes[a:b] = g
        out_values[a:b] = v
