"""Compiled per-row ranking kernels (numba), parallel over rows.

A cell's sentence is the indices of its genes with value > 0 in descending order of value.
Ties are broken by a random permutation drawn from a generator seeded by (seed, global row
index) only, applied to the row's positive entries in ascending gene order, so the result
depends neither on chunking, nor on worker count, nor on the order of indices in a CSR row.

The kernels work on the bit patterns of the values (uint32 for float32, uint64 for float64):
for non-negative IEEE floats the bit pattern is monotone in the value, so a stable LSD radix
sort of the inverted bits over the shuffled row sorts values descending with random
tie-breaking. Radix passes whose digit is the same for the whole row are skipped, which
makes typical log-normalized rows (few distinct values) cheap. On 3,600-gene rows this is
about 4x faster than numba's comparison sort.
"""

from __future__ import annotations

import numba
import numpy as np

_U64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_DIGIT_BITS = 11
_N_BUCKETS = 1 << _DIGIT_BITS


@numba.njit(cache=True, inline="always")
def _splitmix64(x):
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & _U64
    z = x
    z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _U64
    z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _U64
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True)
def _shuffle_inplace(arr, seed, row):
    """Fisher-Yates shuffle from a splitmix64 stream seeded by (seed, row) only."""
    state = _splitmix64(np.uint64(seed) ^ _splitmix64(np.uint64(row)))
    for i in range(arr.shape[0] - 1, 0, -1):
        state = _splitmix64(state)
        # Multiply-shift maps 32 random bits to [0, i]; the bias is below i / 2^32.
        j = np.int64(((state >> np.uint64(32)) * np.uint64(i + 1)) >> np.uint64(32))
        tmp = arr[i]
        arr[i] = arr[j]
        arr[j] = tmp


@numba.njit(cache=True)
def count_positive(indptr, bits, signbit):
    """Per row, the number of entries with value > 0 (bit pattern in (0, signbit))."""
    n = indptr.shape[0] - 1
    out = np.zeros(n, dtype=np.int64)
    for r in range(n):
        c = 0
        for p in range(indptr[r], indptr[r + 1]):
            b = bits[p]
            if b > 0 and b < signbit:
                c += 1
        out[r] = c
    return out


@numba.njit(cache=True)
def _radix_sort_desc(bits, pos, nbits):
    """Stable sort of ``pos`` by ``bits[pos]`` descending (LSD radix on inverted bits)."""
    n = pos.shape[0]
    keys = np.empty(n, dtype=bits.dtype)
    for i in range(n):
        keys[i] = ~bits[pos[i]]
    any_one = keys[0] & 0
    all_one = ~any_one
    for i in range(n):
        any_one |= keys[i]
        all_one &= keys[i]
    varying = any_one ^ all_one
    keys2 = np.empty_like(keys)
    pos2 = np.empty_like(pos)
    counts = np.empty(_N_BUCKETS, dtype=np.int64)
    # Digit arithmetic stays in the key's unsigned type (mixing uint64 and int64 in numba
    # goes through float64).
    mask = keys[0] & 0 | (_N_BUCKETS - 1)
    for s in range(0, nbits, _DIGIT_BITS):
        shift = keys[0] & 0 | s
        if (varying >> shift) & mask == 0:
            continue  # this digit is the same in every key: the pass would not move anything
        counts[:] = 0
        for i in range(n):
            counts[(keys[i] >> shift) & mask] += 1
        total = 0
        for b in range(_N_BUCKETS):
            c = counts[b]
            counts[b] = total
            total += c
        for i in range(n):
            b = (keys[i] >> shift) & mask
            dst = counts[b]
            counts[b] = dst + 1
            keys2[dst] = keys[i]
            pos2[dst] = pos[i]
        keys, keys2 = keys2, keys
        pos, pos2 = pos2, pos
    return pos


@numba.njit(cache=True, parallel=True, nogil=True)
def rank_rows(
    indptr, indices, bits, signbit, nbits, seed, row_offset, npos, out_offsets, out_genes, out_src
):
    """Rank CSR rows; writes each row's top ``out_offsets`` entries as gene and source index."""
    n_rows = indptr.shape[0] - 1
    for r in numba.prange(n_rows):
        n = npos[r]
        k = out_offsets[r + 1] - out_offsets[r]
        if k == 0:
            continue
        start = indptr[r]
        pos = np.empty(n, dtype=np.int64)
        c = 0
        for p in range(start, indptr[r + 1]):
            b = bits[p]
            if b > 0 and b < signbit:
                pos[c] = p
                c += 1
        for q in range(1, n):
            if indices[pos[q]] < indices[pos[q - 1]]:
                # Unsorted CSR indices (scipy allows them): use ascending gene order.
                pos = pos[np.argsort(indices[pos], kind="mergesort")]
                break
        _shuffle_inplace(pos, seed, row_offset + r)
        pos = _radix_sort_desc(bits, pos, nbits)
        base = out_offsets[r]
        for q in range(k):
            out_genes[base + q] = indices[pos[q]]
            out_src[base + q] = pos[q]


@numba.njit(cache=True)
def count_expressed(indices, bits, signbit, n_genes):
    """Cells-expressed count per gene (entries > 0)."""
    out = np.zeros(n_genes, dtype=np.int64)
    for p in range(indices.shape[0]):
        b = bits[p]
        if b > 0 and b < signbit:
            out[indices[p]] += 1
    return out
