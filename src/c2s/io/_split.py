"""Seeded train / validation / test assignment."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from c2s._errors import C2SError

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
    n_cells: int, fractions=(0.8, 0.1, 0.1), *, seed: int = 0, stratify=None
) -> np.ndarray:
    """Split code per cell (0 train, 1 validation, 2 test), a seeded permutation.

    With ``stratify`` (labels per cell), each label is split separately so that rare labels
    appear in every split they can.
    """
    fractions = parse_fractions(fractions)
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise C2SError(f"seed must be a non-negative integer, got {seed!r}.")
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
        warnings.warn(
            f"{len(short)} labels have too few cells to appear in every split, so some split "
            f"has none of them: {', '.join(short[:8])}{' ...' if len(short) > 8 else ''}. "
            "Their held-out scores will be missing; merge rare labels or drop them.",
            stacklevel=3,
        )
    return codes
