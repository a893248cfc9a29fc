"""The gene vocabulary of a set of cell sentences."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from c2s._errors import C2SError

_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$")
_WHITESPACE = re.compile(r"\s")


def check_gene_names(names: Sequence[str], *, where: str = "adata.var_names") -> np.ndarray:
    """Validate gene names for use in cell sentences; returns them as an object array.

    Refuses duplicates, empty names and names containing whitespace (a sentence is split on
    spaces), and warns when most names look like Ensembl IDs (released models were trained on
    gene symbols) or when names differ only by case.
    """
    names = np.asarray([str(n) for n in names], dtype=object)
    if len(names) == 0:
        raise C2SError(f"{where} is empty: the data has no genes.")
    index = pd.Index(names)
    if index.has_duplicates:
        dup = index[index.duplicated()].unique()
        raise C2SError(
            f"{len(dup)} gene names in {where} are duplicated (e.g. {', '.join(map(repr, dup[:5]))}). "
            "Each gene must have one name; run adata.var_names_make_unique() or aggregate the "
            "duplicated genes first."
        )
    # One regex over the joined names is much faster than per-name string methods.
    joined = "\x00".join(names)
    if "\x00\x00" in f"\x00{joined}\x00":
        n_empty = int(sum(len(n) == 0 for n in names))
        raise C2SError(f"{n_empty} gene names in {where} are empty strings; name every gene.")
    if _WHITESPACE.search(joined):
        spaced = [n for n in names if _WHITESPACE.search(n)]
        raise C2SError(
            f"{len(spaced)} gene names in {where} contain whitespace "
            f"(e.g. {', '.join(map(repr, spaced[:3]))}), which would split them in a cell "
            "sentence. Replace it, e.g. adata.var_names = adata.var_names.str.replace(r'\\s+', '_', "
            "regex=True)."
        )
    sample = names[:: max(1, len(names) // 1000)]
    ens = np.mean([bool(_ENSEMBL.match(n)) for n in sample])
    if ens > 0.5:
        warnings.warn(
            f"{ens:.0%} of the gene names in {where} look like Ensembl IDs (e.g. {names[0]!r}). "
            "Cell2Sentence models are trained on gene symbols; use a symbol column instead "
            "(--var-names COLUMN, or var_names='COLUMN' in Python).",
            stacklevel=3,
        )
    upper = pd.Index(joined.upper().split("\x00"))
    if upper.has_duplicates:
        clash = upper[upper.duplicated()].unique()
        warnings.warn(
            f"{len(clash)} gene names differ only by case (e.g. {clash[0]!r}) and share one "
            "upper-cased display name in sentences; their text is ambiguous.",
            stacklevel=3,
        )
    return names


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
