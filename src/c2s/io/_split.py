"""Seeded train / validation / test assignment."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from c2s._errors import C2SError
from c2s._warn import warn_user

SPLITS = ("train", "validation", "test")


def parse_fractions(split) -> tuple[float, float, float]:
    """``(train, validation, test)`` fractions from a tuple or a string like ``"0.8,0.1,0.1"``."""
    if isinstance(split, str):
        try:
            split = [float(x) for x in split.split(",")]
        except ValueError as e:
            raise C2SError(
                f"Cannot read split fractions from {split!r}; use e.g. 0.8,0.1,0.1."
            ) from e
    fr = tuple(float(x) for x in split)
    if len(fr) == 2:
        fr = (fr[0], fr[1], 0.0)
    if (
        len(fr) != 3
        or not all(math.isfinite(x) and x >= 0 for x in fr)
        or abs(sum(fr) - 1.0) > 1e-6
    ):
        raise C2SError(
            f"Split fractions must be three non-negative numbers summing to 1 "
            f"(train, validation, test), got {split!r}."
        )
    return fr  # type: ignore[return-value]


def _allocate(n: int, fractions) -> np.ndarray:
    """Counts per split that sum to n (largest remainder)."""
    raw = np.asarray(fractions) * n
    counts = np.floor(raw).astype(np.int64)
    rest = n - counts.sum()
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:rest]] += 1
    return counts


def assign_splits(
    n_cells: int,
    fractions=(0.8, 0.1, 0.1),
    *,
    seed: int = 0,
    stratify=None,
    groups=None,
    holdout=None,
) -> np.ndarray:
    """Split code per cell (0 train, 1 validation, 2 test), a seeded permutation.

    With ``stratify`` (labels per cell), each label is split separately so that rare labels
    appear in every split they can. With ``groups`` (a value per cell), whole groups go to
    one split each, their number in proportion to the fractions (e.g. unseen perturbations
    in test). With ``holdout`` (a boolean per cell), those cells all go to test and the rest
    are split as above (so held-out cells of the other groups are in test too).
    """
    fractions = parse_fractions(fractions)
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise C2SError(f"seed must be a non-negative integer, got {seed!r}.")
    if groups is not None and stratify is not None:
        raise C2SError("Split either by whole groups or stratified by a label, not both.")
    if groups is not None:
        return _group_split(np.asarray(groups).astype(str), fractions, seed)
    if holdout is not None:
        held = np.asarray(holdout, dtype=bool)
        if len(held) != n_cells:
            raise C2SError("holdout must have one entry per cell.")
        if n_cells and held.all():
            raise C2SError(
                "The held-out values cover every cell, so no cell is left to train on or "
                "validate with; hold out fewer values (--holdout), or for a test-only dataset "
                "give --split 0,0,1 without --holdout."
            )
        codes = np.full(n_cells, 2, dtype=np.int8)
        rest = np.flatnonzero(~held)
        strat = None if stratify is None else np.asarray(stratify, dtype=object)[rest]
        codes[rest] = assign_splits(len(rest), fractions, seed=seed, stratify=strat)
        return codes

    rng = np.random.default_rng(seed)
    codes = np.empty(n_cells, dtype=np.int8)
    if stratify is None:
        groups = [np.arange(n_cells)]
    else:
        labels = pd.Series(np.asarray(stratify)).astype("category")
        if len(labels) != n_cells:
            raise C2SError("stratify must have one label per cell.")
        groups = [
            np.flatnonzero(labels.cat.codes.to_numpy() == c)
            for c in range(len(labels.cat.categories))
        ]
        groups.append(np.flatnonzero(labels.isna().to_numpy()))
    short = []
    for g, idx in enumerate(groups):
        perm = idx[rng.permutation(len(idx))]
        counts = _allocate(len(idx), fractions)
        bounds = np.cumsum(counts)
        codes[perm[: bounds[0]]] = 0
        codes[perm[bounds[0] : bounds[1]]] = 1
        codes[perm[bounds[1] :]] = 2
        labelled = stratify is not None and g < len(groups) - 1
        if labelled and any(f > 0 and c == 0 for f, c in zip(fractions, counts, strict=True)):
            short.append(f"{labels.cat.categories[g]} ({len(idx)} cells)")
    if short:
        warn_user(
            f"{len(short)} labels have too few cells to appear in every split, so some split "
            f"has none of them: {', '.join(short[:8])}{' ...' if len(short) > 8 else ''}. "
            "Their held-out scores will be missing; merge rare labels or drop them.",
        )
    return codes


def _group_split(values: np.ndarray, fractions, seed: int) -> np.ndarray:
    """Whole groups to splits: a seeded permutation of the distinct values, cut by the
    fractions (each split with a non-zero fraction gets at least one group when it can)."""
    names = np.unique(values)
    if len(names) < sum(f > 0 for f in fractions):
        raise C2SError(
            f"Only {len(names)} distinct values to split as whole groups, fewer than the "
            "splits asked for; give fewer splits (e.g. --split 0.8,0,0.2) or more groups."
        )
    perm = names[np.random.default_rng(seed).permutation(len(names))]
    counts = _allocate(len(names), fractions)
    for j in np.argsort(fractions)[::-1]:  # a split with a fraction but no group takes one
        if fractions[j] > 0 and counts[j] == 0:
            counts[int(np.argmax(counts))] -= 1
            counts[j] = 1
    bounds = np.cumsum(counts)
    where = {name: int(np.searchsorted(bounds, k, side="right")) for k, name in enumerate(perm)}
    return np.asarray([where[v] for v in values], dtype=np.int8)
