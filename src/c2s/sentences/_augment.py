"""Augmentations that cell sentences give for free: another order of tied genes, and a
random subset of the genes (order kept)."""

from __future__ import annotations

import numpy as np

from c2s._errors import C2SError
from c2s.sentences._sentences import CellSentences


def shuffle_ties(cs: CellSentences, seed) -> CellSentences:
    """The same cells with genes of equal expression in a new seeded order; genes of
    distinct expression keep their order. Needs the sentences' values; apply it before
    keeping the top genes (ties at the cut then change which genes are kept, as they
    should)."""
    if cs.values is None:
        raise C2SError("Reordering ties needs the expression values (sentences with values).")
    rng = np.random.default_rng(seed)
    cell = np.repeat(np.arange(cs.n_cells), cs.lengths)
    order = np.lexsort((rng.random(len(cs.genes)), -cs.values, cell))
    return CellSentences(cs.genes[order], cs.offsets, cs.vocab, cs.obs, cs.values[order])


def drop_genes(cs: CellSentences, fraction: float, seed) -> CellSentences:
    """Each gene of each cell left out with probability ``fraction`` (seeded); the rest keep
    their order."""
    if not 0 <= fraction < 1:
        raise C2SError(f"fraction must be in [0, 1), got {fraction}.")
    keep = np.random.default_rng(seed).random(len(cs.genes)) >= fraction
    cell = np.repeat(np.arange(cs.n_cells), cs.lengths)
    offsets = np.zeros(cs.n_cells + 1, dtype=np.int64)
    np.cumsum(np.bincount(cell[keep], minlength=cs.n_cells), out=offsets[1:])
    values = None if cs.values is None else cs.values[keep]
    return CellSentences(cs.genes[keep], offsets, cs.vocab, cs.obs, values)
