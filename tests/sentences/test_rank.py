"""Property checks of the rank kernel against a slow, obvious reference implementation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c2s._errors import C2SError
from c2s.sentences import rank

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FLOAT_LEVELS = (0.0, 0.0, 0.5, 1.0, 2.0)
INT_LEVELS = (0, 0, 1, 2, 3)
DTYPES = (np.float32, np.float64, np.int32, np.int64, np.uint16)


# ---------------------------------------------------------------------------------------
# reference
# ---------------------------------------------------------------------------------------
def slow_rank(D: np.ndarray):
    """Per row: genes with value > 0 and their values sorted descending (float64)."""
    out = []
    for row in np.asarray(D, dtype=np.float64):
        genes = [j for j in range(len(row)) if row[j] > 0]
        vals = sorted((row[j] for j in genes), reverse=True)
        out.append((set(genes), vals))
    return out


def rows_of(r):
    return [
        (r.genes[r.offsets[i] : r.offsets[i + 1]], r.values[r.offsets[i] : r.offsets[i + 1]])
        for i in range(len(r.offsets) - 1)
    ]


def assert_same_ranked(a, b):
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.genes, b.genes)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.n_expressed, b.n_expressed)


# ---------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------
@st.composite
def matrices(draw, max_rows=12, max_cols=25):
    """(dense float64 truth, CSR input) with ties, empty and all-equal rows, stored zeros,
    several dtypes and (sometimes) unsorted column indices."""
    n_rows = draw(st.integers(1, max_rows))
    n_cols = draw(st.integers(1, max_cols))
    dtype = draw(st.sampled_from(DTYPES))
    levels = INT_LEVELS if np.dtype(dtype).kind in "iu" else FLOAT_LEVELS
    rows = []
    for _ in range(n_rows):
        kind = draw(st.sampled_from(["random", "random", "random", "empty", "equal"]))
        if kind == "empty":
            rows.append([0] * n_cols)
        elif kind == "equal":
            rows.append([levels[-1]] * n_cols)
        else:
            rows.append(draw(st.lists(st.sampled_from(levels), min_size=n_cols, max_size=n_cols)))
    D = np.asarray(rows, dtype=dtype)
    # Build CSR by hand: store some zeros explicitly, and optionally shuffle each row's indices.
    keep_zero = draw(st.lists(st.booleans(), min_size=D.size, max_size=D.size))
    shuffle = draw(st.booleans())
    perm_seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(perm_seed)
    indptr, indices, data = [0], [], []
    for i in range(n_rows):
        cols = [j for j in range(n_cols) if D[i, j] != 0 or keep_zero[i * n_cols + j]]
        if shuffle:
            cols = list(rng.permutation(cols))
        indices += cols
        data += [D[i, j] for j in cols]
        indptr.append(len(indices))
    X = sp.csr_matrix(
        (np.asarray(data, dtype=dtype), np.asarray(indices, dtype=np.int32), np.asarray(indptr)),
        shape=D.shape,
    )
    return D.astype(np.float64), X


# ---------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------
@SETTINGS
@given(m=matrices(), seed=st.integers(0, 2**31))
def test_rank_matches_slow_reference(m, seed):
    D, X = m
    r = rank(X, seed=seed)
    assert r.genes.dtype == np.int32 and r.values.dtype == np.float32
    assert r.offsets.dtype == np.int64 and len(r.offsets) == D.shape[0] + 1
    for i, ((genes, values), (slow_genes, slow_vals)) in enumerate(
        zip(rows_of(r), slow_rank(D), strict=True)
    ):
        assert len(genes) == len(set(genes.tolist()))  # no gene twice
        assert set(genes.tolist()) == slow_genes
        np.testing.assert_array_equal(values, np.asarray(slow_vals, dtype=np.float32))
        # values are those of the genes they stand next to
        np.testing.assert_array_equal(values, D[i, genes].astype(np.float32))
    np.testing.assert_array_equal(r.n_expressed, (D > 0).sum(axis=0))


@st.composite
def wide_matrices(draw):
    """Long rows with up to ~1000 distinct values (more than fit a small hash table) and
    ties, as float32, float64 or integer counts."""
    n_rows = draw(st.integers(1, 4))
    n_cols = draw(st.integers(200, 900))
    n_levels = draw(st.sampled_from([2, 40, 400, 5000]))
    density = draw(st.sampled_from([0.3, 0.9]))
    dtype = draw(st.sampled_from(DTYPES[:4]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    D = rng.integers(1, n_levels + 1, size=(n_rows, n_cols)).astype(np.float64)
    if np.dtype(dtype).kind == "f":
        D = D / 7.0
    D[rng.random(D.shape) > density] = 0
    return D, sp.csr_matrix(D.astype(dtype))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=wide_matrices(), seed=st.integers(0, 2**31), k=st.integers(1, 600))
def test_wide_rows_match_slow_reference(m, seed, k):
    D, X = m
    r = rank(X, seed=seed)
    for i, ((genes, values), (slow_genes, slow_vals)) in enumerate(
        zip(rows_of(r), slow_rank(D), strict=True)
    ):
        assert set(genes.tolist()) == slow_genes and len(genes) == len(slow_genes)
        np.testing.assert_array_equal(values, np.asarray(slow_vals, dtype=np.float32))
        assert np.all(np.diff(D[i, genes]) <= 0)
    top = rank(X, seed=seed, n_genes=k)
    for (g_full, v_full), (g_top, v_top) in zip(rows_of(r), rows_of(top), strict=True):
        np.testing.assert_array_equal(g_top, g_full[:k])
        np.testing.assert_array_equal(v_top, v_full[:k])
    assert_same_ranked(rank(X.toarray(), seed=seed), r)
    np.testing.assert_array_equal(r.n_expressed, (D > 0).sum(axis=0))


@SETTINGS
@given(m=matrices(), seed=st.integers(0, 1000), k=st.integers(1, 30))
def test_top_n_genes_are_a_prefix_of_the_full_ranking(m, seed, k):
    _, X = m
    full = rank(X, seed=seed)
    top = rank(X, seed=seed, n_genes=k)
    for (g_full, v_full), (g_top, v_top) in zip(rows_of(full), rows_of(top), strict=True):
        np.testing.assert_array_equal(g_top, g_full[:k])
        np.testing.assert_array_equal(v_top, v_full[:k])
    # n_expressed counts every expressed gene, not only the kept ones
    np.testing.assert_array_equal(top.n_expressed, full.n_expressed)


@SETTINGS
@given(m=matrices(), seed=st.integers(0, 1000))
def test_csr_csc_dense_give_the_same_ranking(m, seed):
    _, X = m
    ref = rank(X, seed=seed)
    assert_same_ranked(rank(X.tocsc(), seed=seed), ref)
    assert_same_ranked(rank(X.toarray(), seed=seed), ref)
    canonical = X.copy()
    canonical.sort_indices()
    canonical.eliminate_zeros()
    assert_same_ranked(rank(canonical, seed=seed), ref)


@SETTINGS
@given(m=matrices(max_rows=20), seed=st.integers(0, 1000), data=st.data())
def test_chunked_ranking_with_row_offset_equals_whole(m, seed, data):
    _, X = m
    n = X.shape[0]
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, n - 1)), max_size=4)))
    bounds = [0, *[c for c in cuts if c < n], n]
    whole = rank(X, seed=seed)
    parts = [rank(X[a:b], seed=seed, row_offset=a) for a, b in itertools.pairwise(bounds)]
    np.testing.assert_array_equal(np.concatenate([p.genes for p in parts]), whole.genes)
    np.testing.assert_array_equal(np.concatenate([p.values for p in parts]), whole.values)
    lens = np.concatenate([np.diff(p.offsets) for p in parts])
    np.testing.assert_array_equal(lens, np.diff(whole.offsets))
    np.testing.assert_array_equal(sum(p.n_expressed for p in parts), whole.n_expressed)


def test_seeds_change_tie_order_but_not_values():
    rng = np.random.default_rng(0)
    D = rng.choice([0.0, 0.5, 1.0, 2.0], size=(30, 60))
    a, b = rank(D, seed=0), rank(D, seed=1)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    assert not np.array_equal(a.genes, b.genes)
    for (ga, _), (gb, _) in zip(rows_of(a), rows_of(b), strict=True):
        assert sorted(ga.tolist()) == sorted(gb.tolist())
    # and the same seed is deterministic
    np.testing.assert_array_equal(rank(D, seed=0).genes, a.genes)


def test_row_offset_changes_tie_order():
    D = np.ones((1, 40))
    g0 = rank(D, row_offset=0).genes
    g1 = rank(D, row_offset=1).genes
    assert sorted(g0.tolist()) == sorted(g1.tolist()) == list(range(40))
    assert not np.array_equal(g0, g1)


def test_tie_order_is_uniform():
    n = 2000
    firsts = np.array([rank(np.ones((1, 4)), seed=7, row_offset=i).genes[0] for i in range(n)])
    counts = np.bincount(firsts, minlength=4)
    # expected 500 each, sd ~19: a loose bound of ~5 sd
    assert counts.sum() == n
    assert np.all(np.abs(counts - n / 4) < 100), counts
    # the one-row calls agree with ranking all rows at once (stream depends on the row index)
    whole = rank(np.ones((n, 4)), seed=7)
    np.testing.assert_array_equal(whole.genes[whole.offsets[:-1]], firsts)
    # every one of the 24 orders of 4 tied genes occurs
    orders = {tuple(whole.genes[whole.offsets[i] : whole.offsets[i + 1]]) for i in range(n)}
    assert len(orders) == 24


def test_tie_order_does_not_depend_on_the_other_values():
    # The top bucket is shuffled first from the row's stream, so its order is the same
    # whether the rest of the row has one distinct value or hundreds.
    n = 700
    rng = np.random.default_rng(1)
    many = np.zeros((1, n))
    many[0, 100:700] = rng.permutation(600) + 1.0  # 600 distinct values below the top
    few = np.zeros((1, n))
    few[0, 100:700] = 1.0
    top = [3, 17, 42, 99, 250, 600]
    many[0, top] = few[0, top] = 5000.0
    for offset in range(50):
        a = rank(many, seed=3, row_offset=offset)
        b = rank(few, seed=3, row_offset=offset)
        np.testing.assert_array_equal(a.genes[:6], b.genes[:6])
        assert sorted(a.genes[:6].tolist()) == top
        np.testing.assert_array_equal(
            rank(many, seed=3, row_offset=offset, n_genes=4).genes, a.genes[:4]
        )


def test_ties_only_broken_within_equal_values():
    # 3 levels, 10 genes each: every permutation keeps the level blocks in order
    D = np.tile([[3.0, 2.0, 1.0]], 10)
    for seed in range(20):
        r = rank(D, seed=seed)
        np.testing.assert_array_equal(np.sort(r.genes[:10]), np.arange(0, 30, 3))
        np.testing.assert_array_equal(np.sort(r.genes[10:20]), np.arange(1, 30, 3))
        np.testing.assert_array_equal(np.sort(r.genes[20:]), np.arange(2, 30, 3))


@pytest.mark.parametrize("fmt", ["csr", "dense"])
def test_float64_differences_below_float32_precision_are_ordered(fmt):
    base = 1.0 + np.arange(50) * 1e-12  # all the same in float32
    rng = np.random.default_rng(3)
    cols = rng.permutation(50)
    D = np.zeros((2, 60))
    D[0, cols] = base
    D[1, cols] = 1e3 + np.arange(50) * 1e-10
    assert len(np.unique(D[0, cols].astype(np.float32))) == 1
    X = sp.csr_matrix(D) if fmt == "csr" else D
    for seed in (0, 1, 2):
        r = rank(X, seed=seed)
        for i, (genes, values) in enumerate(rows_of(r)):
            assert len(genes) == 50
            assert np.all(np.diff(D[i, genes]) < 0)  # strictly descending in float64
            np.testing.assert_array_equal(values, D[i, genes].astype(np.float32))


def test_large_integer_counts_are_ordered_exactly():
    # above 2^24 float32 cannot tell these apart
    big = 2**24 + np.arange(6, dtype=np.int64) * 1
    D = np.zeros((1, 8), dtype=np.int64)
    D[0, [5, 1, 7, 0, 3, 2]] = big
    r = rank(D)
    np.testing.assert_array_equal(r.genes, [2, 3, 0, 7, 1, 5])


def test_negative_zero_is_not_expressed_and_tiny_values_are():
    for dtype in (np.float32, np.float64):
        D = np.array([[0.0, 2.0, -0.0, 0.5, 0.0, 1e-30]], dtype=dtype)
        r = rank(D)
        np.testing.assert_array_equal(r.genes, [1, 3, 5])
        np.testing.assert_array_equal(r.n_expressed, [0, 1, 0, 1, 0, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [-1.0, np.inf, -np.inf])
def test_negative_and_infinite_values_are_refused(dtype, bad):
    D = np.array([[0.0, 2.0, bad, 0.5]], dtype=dtype)
    with pytest.raises(C2SError, match=r"negative|infinite"):
        rank(D)


def test_empty_matrix_and_rows():
    r = rank(sp.csr_matrix((5, 7), dtype=np.float32))
    np.testing.assert_array_equal(r.offsets, np.zeros(6))
    assert len(r.genes) == 0 and len(r.values) == 0
    np.testing.assert_array_equal(r.n_expressed, np.zeros(7))
    r0 = rank(np.zeros((0, 3)))
    np.testing.assert_array_equal(r0.offsets, [0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fmt", ["csr", "csc", "dense"])
def test_nan_raises(dtype, fmt):
    D = np.array([[1.0, 0.0, 2.0], [0.0, np.nan, 1.0]], dtype=dtype)
    X = {"csr": sp.csr_matrix, "csc": sp.csc_matrix, "dense": np.asarray}[fmt](D)
    with pytest.raises(C2SError, match="NaN"):
        rank(X)


def test_bad_arguments_raise():
    D = np.ones((2, 3))
    with pytest.raises(C2SError, match="n_genes must be a positive number of genes"):
        rank(D, n_genes=0)
    with pytest.raises(C2SError, match="seed"):
        rank(D, seed=-1)
    with pytest.raises(C2SError, match="2-D"):
        rank(np.ones(3))
