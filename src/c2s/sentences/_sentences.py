"""CellSentences: ranked cells as ragged integer arrays plus a vocabulary and an obs table."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from c2s._deprecate import renamed, warn_renamed
from c2s._errors import C2SError
from c2s.sentences._vocab import Vocab


def first_k(offsets: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each row's first ``k`` entries of ragged arrays with ``offsets`` (from 0) lie:
    the flat positions to keep, and the offsets after keeping them."""
    lens = np.minimum(np.diff(offsets), k)
    new_off = np.zeros(len(offsets), dtype=np.int64)
    np.cumsum(lens, out=new_off[1:])
    return np.repeat(offsets[:-1] - new_off[:-1], lens) + np.arange(new_off[-1]), new_off


@dataclass
class CellSentences:
    """Cell sentences in the integer data model.

    Cell ``i`` is ``genes[offsets[i]:offsets[i + 1]]``: vocabulary indices of its expressed
    genes in descending order of expression; ``values`` (optional) holds the expression in
    the same order. Text is rendered only on request, and only for the genes asked for.
    """

    genes: np.ndarray  # int32
    offsets: np.ndarray  # int64, n_cells + 1
    vocab: Vocab
    obs: pd.DataFrame = field(default_factory=pd.DataFrame)
    values: np.ndarray | None = None  # float32

    def __post_init__(self):
        self.genes = np.asarray(self.genes, dtype=np.int32)
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        if self.offsets.ndim != 1 or len(self.offsets) < 1 or self.offsets[0] != 0:
            raise C2SError("offsets must be a 1-D array starting at 0.")
        if self.offsets[-1] != len(self.genes):
            raise C2SError(
                f"offsets end at {self.offsets[-1]} but there are {len(self.genes)} genes."
            )
        if self.values is not None:
            self.values = np.asarray(self.values, dtype=np.float32)
            if len(self.values) != len(self.genes):
                raise C2SError("values and genes must have the same length.")
        if len(self.obs) == 0 and len(self.obs.columns) == 0:
            self.obs = pd.DataFrame(index=pd.RangeIndex(self.n_cells).astype(str))
        if len(self.obs) != self.n_cells:
            raise C2SError(f"obs has {len(self.obs)} rows for {self.n_cells} cells.")
        if len(self.genes) and (self.genes.min() < 0 or self.genes.max() >= len(self.vocab)):
            raise C2SError("gene indices fall outside the vocabulary.")

    # -- shape ---------------------------------------------------------------------------
    @property
    def n_cells(self) -> int:
        return len(self.offsets) - 1

    def __len__(self) -> int:
        return self.n_cells

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def positions(self) -> np.ndarray:
        """0-based rank of every stored gene within its cell (flat, aligned with ``genes``)."""
        return np.arange(len(self.genes), dtype=np.int64) - np.repeat(
            self.offsets[:-1], self.lengths
        )

    def __repr__(self) -> str:
        lens = self.lengths
        mean = f"{lens.mean():.1f}" if len(lens) else "0"
        return (
            f"CellSentences: {self.n_cells} cells, {len(self.vocab)} genes in vocab, "
            f"mean length {mean}, values={'yes' if self.values is not None else 'no'}, "
            f"obs columns {list(self.obs.columns)}"
        )

    # -- access --------------------------------------------------------------------------
    def cell(self, i: int) -> np.ndarray:
        return self.genes[self.offsets[i] : self.offsets[i + 1]]

    def cell_values(self, i: int) -> np.ndarray:
        if self.values is None:
            raise C2SError("These sentences carry no expression values.")
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def take(self, idx) -> CellSentences:
        """A new CellSentences with the cells ``idx`` (integer indices or a boolean mask)."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            if len(idx) != self.n_cells:
                raise C2SError(f"A boolean mask needs {self.n_cells} entries, got {len(idx)}.")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64, copy=False).ravel()
        if len(idx) and (idx.min() < -self.n_cells or idx.max() >= self.n_cells):
            raise C2SError(f"Cell index out of range for {self.n_cells} cells.")
        idx = np.where(idx < 0, idx + self.n_cells, idx)
        starts, stops = self.offsets[idx], self.offsets[idx + 1]
        lens = stops - starts
        new_off = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(lens, out=new_off[1:])
        flat = np.repeat(starts - new_off[:-1], lens) + np.arange(new_off[-1])
        return CellSentences(
            self.genes[flat],
            new_off,
            self.vocab,
            self.obs.iloc[idx],
            None if self.values is None else self.values[flat],
        )

    def top_genes(self, n_genes: int) -> CellSentences:
        """Keep the first ``n_genes`` genes of every cell."""
        if n_genes < 1:
            raise C2SError(f"n_genes must be a positive number of genes, got {n_genes}.")
        flat, new_off = first_k(self.offsets, n_genes)
        return CellSentences(
            self.genes[flat],
            new_off,
            self.vocab,
            self.obs,
            None if self.values is None else self.values[flat],
        )

    def top_k(self, k: int) -> CellSentences:
        """The old name of :meth:`top_genes` (warns; goes in the next release)."""
        warn_renamed("CellSentences.top_k(k)", "CellSentences.top_genes(n_genes)")
        return self.top_genes(k)

    # -- text ----------------------------------------------------------------------------
    @renamed(k="n_genes")
    def to_text(self, n_genes: int | None = None, *, sep: str = " ") -> list[str]:
        """Render sentences as upper-cased gene names joined by ``sep`` (the first
        ``n_genes`` of each, if given)."""
        names = self.vocab.display_names
        offs = self.offsets
        out = []
        for i in range(self.n_cells):
            a, b = offs[i], offs[i + 1]
            if n_genes is not None:
                b = min(b, a + n_genes)
            out.append(sep.join(names[self.genes[a:b]].tolist()))
        return out

    @classmethod
    def from_text(
        cls,
        texts,
        vocab: Vocab | None = None,
        *,
        obs: pd.DataFrame | None = None,
        on_unknown: str = "error",
    ) -> CellSentences:
        """Parse space-separated gene names back into integer sentences.

        With no ``vocab``, one is built from the names in order of first appearance. Unknown
        genes raise (``on_unknown="error"``) or are dropped (``"drop"``).
        """
        tokens = [t.split() for t in texts]
        lens = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
        flat = [g for t in tokens for g in t]
        if vocab is None:
            codes, uniques = pd.factorize(pd.Index(flat).str.upper(), sort=False)
            vocab = Vocab.from_names(list(uniques))
        else:
            codes = vocab.index_of(flat)
        codes = np.asarray(codes, dtype=np.int64)
        if (codes < 0).any():
            missing = sorted({flat[i] for i in np.flatnonzero(codes < 0)[:5]})
            if on_unknown == "error":
                raise C2SError(
                    f"{int((codes < 0).sum())} gene names are not in the vocabulary "
                    f"(e.g. {missing}); pass on_unknown='drop' to skip them."
                )
            keep = codes >= 0
            cell_of = np.repeat(np.arange(len(lens)), lens)
            lens = np.bincount(cell_of[keep], minlength=len(lens)).astype(np.int64)
            codes = codes[keep]
        offsets = np.zeros(len(lens) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        counts = np.zeros(len(vocab), dtype=np.int64)
        if len(codes):
            cell_of = np.repeat(np.arange(len(lens)), lens)
            pairs = np.unique(cell_of * len(vocab) + codes)
            counts = np.bincount(pairs % len(vocab), minlength=len(vocab)).astype(np.int64)
        vocab = Vocab(vocab.genes, vocab.display_names, counts)
        return cls(
            codes.astype(np.int32), offsets, vocab, obs if obs is not None else pd.DataFrame()
        )

    def to_csr(self, data: np.ndarray | None = None):
        """Cells x vocabulary sparse matrix with ``data`` (default: the stored values) in place;
        each row's entries in gene order."""
        import scipy.sparse as sp

        from c2s.sentences._kernel import sort_rows

        if data is None:
            if self.values is None:
                raise C2SError("These sentences carry no values; pass data=.")
            data = self.values
        data = np.asarray(data, dtype=np.float32)
        if data.shape != self.genes.shape:
            raise C2SError(f"data has {data.size} entries; the sentences have {self.genes.size}.")
        # Rows in gene order with the compiled sort (scipy's sort_indices is ~10x slower on
        # long rows); new arrays, since the inputs may be read-only views of Arrow buffers.
        indices = np.empty(self.genes.shape, dtype=np.int32)
        values = np.empty_like(data)
        sort_rows(self.offsets, self.genes, data, indices, values)
        X = sp.csr_matrix(
            (values, indices, self.offsets.copy()), shape=(self.n_cells, len(self.vocab))
        )
        X.has_sorted_indices = True
        return X
