"""Seeded train / validation / test assignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from c2s._errors import C2SError
from c2s.io import SPLITS, assign_splits
from c2s.io._split import parse_fractions


@st.composite
def fractions(draw):
    w = np.array(draw(st.lists(st.integers(0, 20), min_size=3, max_size=3)), dtype=float)
    if w.sum() == 0:
        w[0] = 1
    return tuple(w / w.sum())


@settings(max_examples=80, deadline=None)
@given(n=st.integers(0, 700), fr=fractions(), seed=st.integers(0, 2**32 - 1))
def test_counts_are_exact(n, fr, seed):
    codes = assign_splits(n, fr, seed=seed)
    assert codes.dtype == np.int8 and len(codes) == n
    counts = np.bincount(codes, minlength=3)
    assert len(counts) == 3 and counts.sum() == n
    target = np.asarray(fr) * n
    assert np.all(np.abs(counts - target) < 1 + 1e-9)
    assert np.all(counts[np.asarray(fr) == 0] == 0)


@pytest.mark.parametrize(
    ("n", "fr", "expect"),
    [
        (1000, (0.8, 0.1, 0.1), [800, 100, 100]),
        (10, (0.5, 0.5), [5, 5, 0]),
        (7, (1, 0, 0), [7, 0, 0]),
        (3, (1 / 3, 1 / 3, 1 / 3), [1, 1, 1]),
        (400, "0.7,0.2,0.1", [280, 80, 40]),
    ],
)
def test_exact_counts_examples(n, fr, expect):
    np.testing.assert_array_equal(np.bincount(assign_splits(n, fr), minlength=3), expect)


def test_seeded_and_shuffled():
    a = assign_splits(500, seed=1)
    np.testing.assert_array_equal(a, assign_splits(500, seed=1))
    b = assign_splits(500, seed=2)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(np.bincount(a), np.bincount(b))
    # a permutation, not blocks: the test cells are spread over the whole range
    test_idx = np.flatnonzero(a == 2)
    assert test_idx.min() < 100 and test_idx.max() > 400


def test_stratified_splits_each_label():
    rng = np.random.default_rng(0)
    labels = rng.choice(["a", "b", "c", "rare"], p=[0.5, 0.3, 0.18, 0.02], size=600)
    labels[:3] = "rare"
    labels = pd.Series(labels).astype(object)
    labels.iloc[10:15] = None  # unlabeled cells are split too
    fr = (0.6, 0.2, 0.2)
    codes = assign_splits(len(labels), fr, seed=5, stratify=labels)
    np.testing.assert_array_equal(codes, assign_splits(len(labels), fr, seed=5, stratify=labels))
    groups = [labels == lab for lab in labels.dropna().unique()] + [labels.isna()]
    for g in groups:
        g = g.to_numpy()
        n = int(g.sum())
        counts = np.bincount(codes[g], minlength=3)
        assert counts.sum() == n
        assert np.all(np.abs(counts - np.asarray(fr) * n) < 1 + 1e-9)
        assert counts[0] > 0  # every label is in train
    with pytest.raises(C2SError, match="one label per cell"):
        assign_splits(10, stratify=["a"] * 9)


def test_parse_fractions():
    assert parse_fractions("0.8,0.1,0.1") == (0.8, 0.1, 0.1)
    assert parse_fractions((0.9, 0.1)) == (0.9, 0.1, 0.0)
    for bad in ["0.8,0.1", (0.5, 0.6, -0.1), (0.2, 0.2, 0.2), (0.5, 0.25, 0.125, 0.125)]:
        with pytest.raises(C2SError, match="fractions"):
            parse_fractions(bad)
    with pytest.raises(C2SError, match="Cannot read"):
        parse_fractions("eighty,ten,ten")
    assert SPLITS == ("train", "validation", "test")
