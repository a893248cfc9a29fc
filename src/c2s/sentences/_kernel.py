"""Compiled per-row ranking kernels (numba), parallel over rows.

The ranking of a cell is defined as follows, and every code path produces exactly this:

1. take the entries with value > 0, in ascending gene (column) order;
2. group them into buckets of equal value, buckets in descending order of value; within a
   bucket entries keep ascending gene order;
3. walk the buckets from the highest value down with one splitmix64 stream seeded by
   (seed, global row index), and shuffle each bucket with a forward Fisher-Yates pass
   (step ``i`` swaps position ``i`` with a uniform position in ``[i, end)``).

Because step ``i`` of a forward Fisher-Yates pass fixes position ``i`` for good, stopping
after the first ``k`` positions gives exactly the first ``k`` genes of the full ranking:
top-k only does the work for the buckets it reaches. Nothing depends on chunking, worker
count, or the order of indices within a CSR row.

Values are handled through their bit patterns (uint32 for float32, uint64 for float64): for
non-negative IEEE floats the pattern is monotone in the value. Rows with few distinct values
(log-normalized counts: a few dozen per cell) are bucketed with a small hash table in one
pass; rows with many distinct values fall back to a stable LSD radix sort.
"""

from __future__ import annotations

import numba
import numpy as np

_U64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_DIGIT_BITS = 11
_N_BUCKETS = 1 << _DIGIT_BITS
_MAX_DISTINCT = 256  # above this many distinct values per row, radix sort instead of hashing


@numba.njit(cache=True, inline="always")
def _splitmix64(x):
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & _U64
    z = x
    z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _U64
    z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _U64
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True, inline="always")
def _is_pos(b, signbit):
    return b > 0 and b < signbit


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


@numba.njit(cache=True)
def _bucket_by_hash(bits, pos, k):
    """Entries of the buckets needed for the top ``k``, grouped by bucket in descending value
    order (ascending gene order within a bucket); ``None`` when the row has more than
    ``_MAX_DISTINCT`` distinct values. ``bits`` is the row's values, ``pos`` row-local."""
    n = pos.shape[0]
    cap = 16
    while cap < 2 * min(n, _MAX_DISTINCT):
        cap *= 2
    shift = np.uint64(64 - int(np.log2(cap)))
    tkeys = np.zeros(cap, dtype=bits.dtype)  # 0 marks an empty slot: no positive value has 0 bits
    tcnt = np.zeros(cap, dtype=np.int32)
    ent_slot = np.empty(n, dtype=np.int16)
    d = 0
    for q in range(n):
        key = bits[pos[q]]
        h = np.int64((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> shift)
        while True:
            t = tkeys[h]
            if t == key:
                break
            if t == 0:
                if d == _MAX_DISTINCT:
                    return None
                tkeys[h] = key
                d += 1
                break
            h = (h + 1) & (cap - 1)
        tcnt[h] += 1
        ent_slot[q] = h
    slots = np.empty(d, dtype=np.int64)
    j = 0
    for h in range(cap):
        if tkeys[h] != 0:
            slots[j] = h
            j += 1
    slots = slots[np.argsort(tkeys[slots])[::-1]]
    bucket_of = np.empty(cap, dtype=np.int32)
    starts = np.empty(d + 1, dtype=np.int64)
    starts[0] = 0
    last = d - 1
    for i in range(d):
        bucket_of[slots[i]] = i
        starts[i + 1] = starts[i] + tcnt[slots[i]]
        if starts[i] < k <= starts[i + 1] and last == d - 1:
            last = i  # the bucket that contains position k - 1
    out = np.empty(starts[last + 1], dtype=pos.dtype)
    cursor = starts[: last + 1].copy()
    for q in range(n):
        b = bucket_of[ent_slot[q]]
        if b <= last:
            out[cursor[b]] = pos[q]
            cursor[b] += 1
    return out


@numba.njit(cache=True)
def _shuffle_ties(order, bits, k, seed, row):
    """Forward Fisher-Yates inside each run of equal values, fixing positions ``< k``."""
    state = _splitmix64(np.uint64(seed) ^ _splitmix64(np.uint64(row)))
    m = order.shape[0]
    i = 0
    while i < k:
        key = bits[order[i]]
        e = i + 1
        while e < m and bits[order[e]] == key:
            e += 1
        stop = min(e - 1, k)
        for a in range(i, stop):
            state = _splitmix64(state)
            # Multiply-shift maps 32 random bits to [0, e - a); the bias is below (e-a)/2^32.
            j = a + np.int64(((state >> np.uint64(32)) * np.uint64(e - a)) >> np.uint64(32))
            tmp = order[a]
            order[a] = order[j]
            order[j] = tmp
        i = e


@numba.njit(cache=True)
def _cut_for_top(row_bits, signbit, n, k):
    """A value threshold (as bits) with, very likely, at least ``k`` but not many more than
    ``2k`` of the row's ``n`` positive entries at or above it, read off a strided sample.

    Any threshold with at least ``k`` entries at or above it keeps every bucket that the top
    ``k`` reaches (the k-th largest value is then above it); the caller checks the count and
    falls back to the whole row (threshold 1) when it is short.
    """
    m = row_bits.shape[0]
    n_sample = min(m, 64)
    sample = np.empty(n_sample, dtype=row_bits.dtype)
    step = m // n_sample
    c = 0
    for i in range(n_sample):
        b = row_bits[i * step]
        if _is_pos(b, signbit):
            sample[c] = b
            c += 1
    if c < 8:
        return row_bits.dtype.type(1)
    sample = np.sort(sample[:c])
    want = min(c - 1, (3 * k * c) // (2 * n) + 1)
    return sample[c - 1 - want]


@numba.njit(cache=True, parallel=True, nogil=True)
def rank_rows(
    indptr,
    indices,
    bits,
    signbit,
    badbits,
    nbits,
    seed,
    row_offset,
    out_offsets,
    out_count,
    out_genes,
    out_bits,
    expressed,
    n_bad,
):
    """Rank CSR rows; writes each row's top entries as gene index and value bit pattern.

    Row ``r`` has room for ``out_offsets[r + 1] - out_offsets[r]`` entries (its stored
    entries, or ``top_k`` of them); it fills the first ``out_count[r]`` (fewer when it stores
    zeros). ``expressed`` (threads x genes) receives per-thread counts of expressing rows per
    gene; ``n_bad`` (threads) counts NaN, infinite and negative entries (bits >=
    ``badbits``, except -0.0), which the caller turns into an error.
    """
    n_rows = indptr.shape[0] - 1
    for r in numba.prange(n_rows):
        n = indptr[r + 1] - indptr[r]  # stored entries: at least the positive ones
        k = out_offsets[r + 1] - out_offsets[r]
        out_count[r] = 0
        start = indptr[r]
        row_bits = bits[start : indptr[r + 1]]
        row_idx = indices[start : indptr[r + 1]]
        tid = numba.get_thread_id()
        counts = expressed[tid]
        # Top-k of a long row: only entries at or above a cut can reach the top k, so only
        # those are kept (one pass either way); a cut that keeps fewer than k is retried
        # with the whole row.
        cut = _cut_for_top(row_bits, signbit, n, k) if k > 0 and 4 * k < n else bits.dtype.type(1)
        pos = np.empty(n + 1, dtype=np.int32)  # + 1: the branch-free append writes one past
        c = 0
        in_order = True
        total = 0
        bad = 0
        for p in range(row_bits.shape[0]):
            b = row_bits[p]
            if _is_pos(b, signbit):
                if b >= badbits:
                    bad += 1
                    continue
                total += 1
                counts[row_idx[p]] += 1
                # Branch-free append: entries above the cut are unpredictable.
                pos[c] = p
                c += b >= cut
            elif b > signbit:
                bad += 1
        n_bad[tid] += bad
        k = min(k, total)
        if k == 0 or bad:
            continue
        for q in range(1, c):
            if row_idx[pos[q]] < row_idx[pos[q - 1]]:
                in_order = False
                break
        if c < k:
            c = 0
            for p in range(row_bits.shape[0]):
                if _is_pos(row_bits[p], signbit):
                    pos[c] = p
                    c += 1
                    if c > 1 and row_idx[p] < row_idx[pos[c - 2]]:
                        in_order = False
        pos = pos[:c]
        if not in_order:
            # Unsorted CSR indices (scipy allows them): use ascending gene order.
            pos = pos[np.argsort(row_idx[pos], kind="mergesort")]
        order = _bucket_by_hash(row_bits, pos, k)
        if order is None:
            order = _radix_sort_desc(row_bits, pos, nbits)
        _shuffle_ties(order, row_bits, k, seed, row_offset + r)
        base = out_offsets[r]
        for q in range(k):
            out_genes[base + q] = row_idx[order[q]]
            out_bits[base + q] = row_bits[order[q]]
        out_count[r] = k


@numba.njit(cache=True, parallel=True, nogil=True)
def sort_rows(offsets, genes, values, out_genes, out_values):
    """Per row, (gene, value) pairs in ascending gene order.

    Uses the ranking kernel's stable radix sort: ascending gene index is descending
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
