"""The gene vocabulary of a set of cell sentences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Vocab:
    """Gene vocabulary: original names, upper-cased display names, cells-expressed counts."""

    genes: np.ndarray  # object array of the original gene names
    display_names: np.ndarray  # object array, upper-cased as the released models expect
    n_cells_expressed: np.ndarray  # int64

    @classmethod
    def from_names(cls, names: Sequence[str], n_cells_expressed=None) -> Vocab:
        genes = np.asarray([str(n) for n in names], dtype=object)
        display = np.asarray([g.upper() for g in genes], dtype=object)
        counts = (
            np.zeros(len(genes), dtype=np.int64)
            if n_cells_expressed is None
            else np.asarray(n_cells_expressed, dtype=np.int64)
        )
        return cls(genes, display, counts)

    def __len__(self) -> int:
        return len(self.genes)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "gene": self.genes.astype(str),
                "display_name": self.display_names.astype(str),
                "n_cells_expressed": self.n_cells_expressed,
            }
        )

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> Vocab:
        return cls(
            np.asarray(df["gene"], dtype=object),
            np.asarray(df["display_name"], dtype=object),
            np.asarray(df["n_cells_expressed"], dtype=np.int64),
        )

    def index_of(self, names: Sequence[str], *, upper: bool = True) -> np.ndarray:
        """Vocabulary indices of gene names (matched on display names if ``upper``); -1 if absent.

        When several genes share a display name (names differing only by case), the first
        one in vocabulary order is returned.
        """
        keys = pd.Index(self.display_names if upper else self.genes)
        lookup = keys[~keys.duplicated()] if keys.has_duplicates else keys
        first = np.flatnonzero(~keys.duplicated()) if keys.has_duplicates else None
        query = [str(n).upper() for n in names] if upper else list(map(str, names))
        idx = lookup.get_indexer(query).astype(np.int64)
        if first is not None:
            idx = np.where(idx >= 0, first[np.maximum(idx, 0)], -1)
        return idx

    def equals(self, other: Vocab) -> bool:
        return bool(np.array_equal(self.genes, other.genes))
