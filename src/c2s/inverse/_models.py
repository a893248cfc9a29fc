"""Rank -> expression models.

A model maps the 0-based position of a gene in a cell sentence (and the sentence's length)
to an expression value. ``linear`` is the published fit (docs/formats.md); ``rank_mean`` is the
default: the mean expression at each rank, estimated separately for cells with short and
long sentences, smoothed over log-spaced rank bins.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from c2s._errors import C2SError
from c2s.sentences import CellSentences


def _sample_cells(n_cells: int, sample_size: int | None, seed: int) -> np.ndarray:
    if sample_size is None or sample_size >= n_cells:
        return np.arange(n_cells)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_cells, size=sample_size, replace=False))


def _training_pairs(sentences: CellSentences, sample_size, seed):
    if sentences.values is None:
        raise C2SError(
            "Fitting an inverse model needs the expression values; convert the data with "
            "values (the default, not with_values=False)."
        )
    cs = sentences.take(_sample_cells(sentences.n_cells, sample_size, seed))
    keep = cs.values > 0
    lengths = np.repeat(cs.lengths, cs.lengths)
    return cs.positions[keep], lengths[keep], cs.values[keep].astype(np.float64)


class InverseModel:
    """Base class: ``fit``, ``predict``, ``to_dict`` / ``from_dict``."""

    name: ClassVar[str] = ""
    registry: ClassVar[dict[str, type[InverseModel]]] = {}
    saved: ClassVar[tuple[str, ...]] = ()  # the attributes ``to_dict`` keeps, in this order

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            InverseModel.registry[cls.name] = cls

    def fit(self, sentences: CellSentences) -> InverseModel:
        raise NotImplementedError

    def predict(self, positions, lengths=None) -> np.ndarray:
        """Expression at 0-based sentence ``positions`` (``lengths``: each cell's length)."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        """The model as plain values (``model``: its name, then :attr:`saved`; arrays as
        lists), which :meth:`from_dict` reads back."""
        values = {k: getattr(self, k) for k in self.saved}
        plain = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in values.items()}
        return {"model": self.name, **plain}

    @staticmethod
    def from_dict(d: dict) -> InverseModel:
        name = d.get("model")
        if name not in InverseModel.registry:
            raise C2SError(
                f"Unknown inverse model {name!r}; known: {sorted(InverseModel.registry)}."
            )
        return InverseModel.registry[name]._from_dict(d)

    @classmethod
    def _from_dict(cls, d: dict) -> InverseModel:
        raise NotImplementedError

    def tables(self, n_positions: int) -> tuple[np.ndarray, np.ndarray]:
        """Values at positions ``0 .. n_positions - 1`` for each sentence-length group.

        Returns ``(tables, centers)``: a ``(groups, n_positions)`` float32 array and the
        sentence length each row stands for (one row for models that ignore length).
        """
        pos = np.arange(max(n_positions, 1), dtype=np.float64)
        return self.predict(pos)[None, :].astype(np.float32), np.zeros(1)

    def predict_sentences(self, sentences: CellSentences) -> np.ndarray:
        """Predicted value for every stored gene (flat, aligned with ``sentences.genes``).

        Uses per-length-group lookup tables and a compiled kernel, so 20,000 full-length
        cells take a fraction of a second.
        """
        from c2s.inverse._kernel import fill_values

        lens = sentences.lengths
        tables, centers = self.tables(int(lens.max()) if len(lens) else 1)
        if len(centers) == 1:
            lo = np.zeros(len(lens), dtype=np.int64)
            w = np.zeros(len(lens), dtype=np.float64)
        else:
            hi = np.clip(np.searchsorted(centers, lens), 1, len(centers) - 1)
            lo = hi - 1
            w = np.clip((lens - centers[lo]) / (centers[hi] - centers[lo]), 0.0, 1.0)
        out = np.empty(len(sentences.genes), dtype=np.float32)
        fill_values(sentences.offsets, lo.astype(np.int64), w, tables, out)
        return out


class LinearInverse(InverseModel):
    """The published fit: ``y = intercept + slope * log10(1 + rank)``.

    Fit by least squares on a sample of ``sample_size`` cells, on expressed genes with
    ``log10(1 + rank) < max_log_rank`` (rank below 999 for the default 3).
    """

    name = "linear"
    saved = ("slope", "intercept", "sample_size", "max_log_rank", "seed")

    def __init__(self, *, sample_size: int | None = 1024, max_log_rank: float = 3.0, seed: int = 0):
        self.sample_size = sample_size
        self.max_log_rank = max_log_rank
        self.seed = seed
        self.slope: float | None = None
        self.intercept: float | None = None

    def fit(self, sentences: CellSentences) -> LinearInverse:
        pos, _, y = _training_pairs(sentences, self.sample_size, self.seed)
        x = np.log10(1.0 + pos)
        keep = x < self.max_log_rank
        x, y = x[keep], y[keep]
        if len(x) < 2 or np.ptp(x) == 0:
            raise C2SError("Too few expressed genes to fit the linear inverse model.")
        self.slope, self.intercept = (float(v) for v in np.polyfit(x, y, 1))
        return self

    def predict(self, positions, lengths=None) -> np.ndarray:
        if self.slope is None:
            raise C2SError("The model is not fitted; call fit() first.")
        x = np.log10(1.0 + np.asarray(positions, dtype=np.float64))
        return (self.intercept + self.slope * x).astype(np.float32)

    @classmethod
    def _from_dict(cls, d: dict) -> LinearInverse:
        m = cls(
            sample_size=d.get("sample_size"),
            max_log_rank=d.get("max_log_rank", 3.0),
            seed=d.get("seed", 0),
        )
        m.slope, m.intercept = d["slope"], d["intercept"]
        return m


class RankMeanInverse(InverseModel):
    """Mean expression per rank, conditioned on sentence length, smoothed in log-rank.

    Cells are grouped into ``n_length_bins`` quantile bins of sentence length (cells that
    express more genes have lower values at the same rank after normalization). Within a
    group, ranks are pooled into ``n_rank_bins`` log-spaced bins and the mean value of each
    bin is placed at the bin's mean ``log10(1 + rank)``. Prediction interpolates linearly in
    log-rank within a group, and linearly in length between the two nearest groups. The mean
    minimizes squared error, so on the training distribution this beats any single curve.
    """

    name = "rank_mean"
    saved = ("n_length_bins", "n_rank_bins", "sample_size", "seed", "length_centers", "x", "y")

    def __init__(
        self,
        *,
        n_length_bins: int = 8,
        n_rank_bins: int = 48,
        sample_size: int | None = 20000,
        seed: int = 0,
    ):
        if n_length_bins < 1 or n_rank_bins < 2:
            raise C2SError("n_length_bins must be >= 1 and n_rank_bins >= 2.")
        self.n_length_bins = n_length_bins
        self.n_rank_bins = n_rank_bins
        self.sample_size = sample_size
        self.seed = seed
        self.length_centers: np.ndarray | None = None  # (G,)
        self.x: np.ndarray | None = None  # (G, R) knot positions in log10(1 + rank)
        self.y: np.ndarray | None = None  # (G, R) mean value at the knots

    def fit(self, sentences: CellSentences) -> RankMeanInverse:
        pos, lens, y = _training_pairs(sentences, self.sample_size, self.seed)
        if len(y) < 2:
            raise C2SError("Too few expressed genes to fit the rank_mean inverse model.")
        cell_lens = sentences.lengths[sentences.lengths > 0].astype(np.float64)
        qs = np.quantile(cell_lens, np.linspace(0, 1, self.n_length_bins + 1)[1:-1])
        edges = np.unique(qs)
        group = np.searchsorted(edges, lens, side="right")
        n_groups = len(edges) + 1
        x = np.log10(1.0 + pos)
        rank_edges = np.linspace(0.0, x.max() + 1e-9, self.n_rank_bins + 1)
        rbin = np.clip(np.searchsorted(rank_edges, x, side="right") - 1, 0, self.n_rank_bins - 1)
        cell = group * self.n_rank_bins + rbin
        size = n_groups * self.n_rank_bins
        cnt = np.bincount(cell, minlength=size).reshape(n_groups, -1)
        sx = np.bincount(cell, weights=x, minlength=size).reshape(n_groups, -1)
        sy = np.bincount(cell, weights=y, minlength=size).reshape(n_groups, -1)
        sl = np.bincount(group, weights=lens, minlength=n_groups)
        cl = np.bincount(group, minlength=n_groups)
        keep_groups = cl > 0
        cnt, sx, sy = cnt[keep_groups], sx[keep_groups], sy[keep_groups]
        self.length_centers = sl[keep_groups] / cl[keep_groups]
        kx = np.full(cnt.shape, np.nan)
        ky = np.full(cnt.shape, np.nan)
        ok = cnt > 0
        kx[ok] = sx[ok] / cnt[ok]
        ky[ok] = sy[ok] / cnt[ok]
        # Empty bins (ranks a group never reaches) take their neighbours' values.
        for g in range(len(kx)):
            good = ok[g]
            centers = 0.5 * (rank_edges[:-1] + rank_edges[1:])
            kx[g, ~good] = centers[~good]
            ky[g] = np.interp(kx[g], kx[g, good], ky[g, good])
            order = np.argsort(kx[g])
            kx[g], ky[g] = kx[g, order], ky[g, order]
        self.x, self.y = kx, ky
        return self

    def _curve(self, g: int, x: np.ndarray) -> np.ndarray:
        return np.interp(x, self.x[g], self.y[g])

    def predict(self, positions, lengths=None) -> np.ndarray:
        if self.x is None:
            raise C2SError("The model is not fitted; call fit() first.")
        x = np.log10(1.0 + np.asarray(positions, dtype=np.float64))
        centers = self.length_centers
        if lengths is None or len(centers) == 1:
            # No length given: the curve of the middle group.
            return self._curve(len(centers) // 2, x).astype(np.float32)
        lengths = np.broadcast_to(np.asarray(lengths, dtype=np.float64), x.shape)
        hi = np.clip(np.searchsorted(centers, lengths), 1, len(centers) - 1)
        lo = hi - 1
        w = np.clip((lengths - centers[lo]) / (centers[hi] - centers[lo]), 0.0, 1.0)
        out = np.empty_like(x)
        for g in range(len(centers) - 1):
            m = lo == g
            if m.any():
                out[m] = (1 - w[m]) * self._curve(g, x[m]) + w[m] * self._curve(g + 1, x[m])
        return out.astype(np.float32)

    def tables(self, n_positions: int) -> tuple[np.ndarray, np.ndarray]:
        if self.x is None:
            raise C2SError("The model is not fitted; call fit() first.")
        x = np.log10(1.0 + np.arange(max(n_positions, 1), dtype=np.float64))
        tabs = np.stack([self._curve(g, x) for g in range(len(self.length_centers))])
        return tabs.astype(np.float32), self.length_centers

    @classmethod
    def _from_dict(cls, d: dict) -> RankMeanInverse:
        m = cls(
            n_length_bins=d["n_length_bins"],
            n_rank_bins=d["n_rank_bins"],
            sample_size=d.get("sample_size"),
            seed=d.get("seed", 0),
        )
        m.length_centers = np.asarray(d["length_centers"], dtype=np.float64)
        m.x = np.asarray(d["x"], dtype=np.float64)
        m.y = np.asarray(d["y"], dtype=np.float64)
        return m
