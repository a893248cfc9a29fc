"""What ``predict`` and ``embed`` return with ``inplace=False``: typed results that know their
own AnnData layout (``.write``) and table (``.to_frame``), so the CLI, the server and the
result files use one layout instead of decoding columns.

For one release a result also answers the DataFrame calls (``result["c2s_prediction"]``,
``result.columns`` ...) that ``inplace=False`` used to allow, with a warning that names
``.to_frame()``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from c2s._errors import C2SError


class _FrameLike:
    """Forward DataFrame calls to ``to_frame()`` (deprecated; ``inplace=False`` returned a
    DataFrame before)."""

    _before = "inplace=False returned a DataFrame before"

    def __getattr__(self, name):
        if name.startswith("_") or name in self.__dataclass_fields__:
            raise AttributeError(name)
        frame = self._deprecated_frame()
        return getattr(frame, name)

    def __getitem__(self, key):
        return self._deprecated_frame()[key]

    def __iter__(self):
        return iter(self._deprecated_frame())  # a DataFrame iterates its columns

    def __contains__(self, key) -> bool:
        return key in self._deprecated_frame()

    def __len__(self) -> int:
        return len(self.index)

    def _deprecated_frame(self) -> pd.DataFrame:
        warnings.warn(
            f"{type(self).__name__} is not a DataFrame: call .to_frame() for the table "
            f"({self._before}; the DataFrame calls on the result go in the next release).",
            FutureWarning,
            stacklevel=3,
        )
        return self.to_frame()


def _aligned_rows(adata, index: pd.Index) -> np.ndarray | None:
    """Positions in ``index`` of ``adata``'s cells (None: the same cells in the same order)."""
    if adata.n_obs == len(index) and adata.obs_names.equals(index):
        return None
    where = index.get_indexer(adata.obs_names)
    if (where < 0).any():
        missing = adata.obs_names[where < 0]
        raise C2SError(
            f"{int((where < 0).sum())} cells of the AnnData have no result (e.g. "
            f"{', '.join(map(str, missing[:3]))}); write the result into the AnnData it was "
            "computed for."
        )
    return where


@dataclass(eq=False)
class PredictionResult(_FrameLike):
    """A label per cell (or per group of cells, repeated on its cells).

    ``index`` is the cells; ``labels`` the predicted label per cell (missing, NaN, where a
    cell got no prediction); ``probability`` the predicted label's probability (score and
    probe modes);
    ``answers`` the raw answer text (free mode); ``probabilities`` a cells x ``candidates``
    matrix (score and probe modes; NaN rows for cells with no prediction); ``info`` what
    ``uns[key_added]`` holds; ``top_labels`` how many most probable labels the table lists.
    """

    index: pd.Index
    labels: np.ndarray
    info: dict
    key_added: str = "c2s_prediction"
    probability: np.ndarray | None = None
    answers: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    candidates: list[str] = field(default_factory=list)
    top_labels: int = 1

    def __post_init__(self) -> None:
        n = len(self.index)
        for name in ("labels", "probability", "answers", "probabilities"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} rows for {n} cells")
        if self.probabilities is not None and self.probabilities.shape[1] != len(self.candidates):
            raise ValueError("probabilities needs one column per candidate label")

    def obs_frame(self, key_added: str | None = None) -> pd.DataFrame:
        """The obs columns (label, probability, answer, top labels), without the matrix."""
        key = key_added or self.key_added
        frame = pd.DataFrame({key: self.labels}, index=self.index)
        if self.probability is not None:
            frame[key + "_probability"] = self.probability
        if self.answers is not None:
            frame[key + "_answer"] = self.answers
        if self.top_labels > 1 and self.probabilities is not None:
            frame = pd.concat([frame, self._top(key)], axis=1)
        return frame

    def to_frame(self, key_added: str | None = None) -> pd.DataFrame:
        """One row per cell: the obs columns, then ``p_<label>`` per candidate label (score and
        probe modes); ``attrs["c2s"]`` holds ``info``."""
        frame = self.obs_frame(key_added)
        if self.probabilities is not None:
            probs = pd.DataFrame(self.probabilities, index=self.index, columns=self.candidates)
            frame = pd.concat([frame, probs.add_prefix("p_")], axis=1)
        frame.attrs["c2s"] = self.info
        return frame

    def write(self, adata, key_added: str | None = None) -> None:
        """Annotate ``adata`` as ``predict(inplace=True)`` does: ``obs[key_added]`` (and
        ``_probability``, ``_answer``, ``_top{i}`` columns), ``obsm[key_added +
        "_probabilities"]`` (columns in the order of ``uns[key_added]["labels"]``) and
        ``uns[key_added]``."""
        key = key_added or self.key_added
        rows = _aligned_rows(adata, self.index)
        frame = self.obs_frame(key)
        for c in frame.columns:
            values = frame[c].to_numpy()
            adata.obs[c] = values if rows is None else values[rows]
        if self.probabilities is not None:
            # an array (labels in uns): label names may hold "/", which h5ad keys cannot
            P = self.probabilities
            adata.obsm[key + "_probabilities"] = P if rows is None else P[rows]
        adata.uns[key] = self.info

    def take(self, rows) -> PredictionResult:
        """The result for the cells at positions ``rows``."""
        rows = np.asarray(rows, dtype=int)

        def pick(a):
            return None if a is None else a[rows]

        return replace(
            self,
            index=self.index[rows],
            labels=self.labels[rows],
            probability=pick(self.probability),
            answers=pick(self.answers),
            probabilities=pick(self.probabilities),
        )

    def expand(self, rows, index: pd.Index) -> PredictionResult:
        """The result for the cells ``index``: cell ``i`` gets row ``rows[i]`` of this result,
        or no prediction (NaN) where ``rows[i]`` is -1. By position, so ids may repeat."""
        rows = np.asarray(rows, dtype=int)
        return replace(
            self,
            index=index,
            labels=_rows_or_nan(self.labels, rows),
            probability=_rows_or_nan(self.probability, rows),
            answers=_rows_or_nan(self.answers, rows),
            probabilities=_rows_or_nan(self.probabilities, rows),
        )

    @classmethod
    def concat(cls, parts: Sequence[PredictionResult]) -> PredictionResult:
        """The cells of ``parts`` (results of one verb with the same options) one after the
        other; ``info`` is the first part's."""
        first = parts[0]
        if any(p.candidates != first.candidates for p in parts):
            raise ValueError("the parts have different candidate labels")
        return replace(
            first,
            index=first.index.append([p.index for p in parts[1:]]),
            labels=np.concatenate([p.labels for p in parts]),
            probability=_joined([p.probability for p in parts]),
            answers=_joined([p.answers for p in parts]),
            probabilities=_joined([p.probabilities for p in parts]),
        )

    def _top(self, key: str) -> pd.DataFrame:
        """The ``top_labels`` most probable labels per cell and their probabilities (rows
        without probabilities stay empty)."""
        P = self.probabilities
        have = ~np.isnan(P).any(1)
        order = np.argsort(-np.nan_to_num(P, nan=-1.0), axis=1, kind="stable")
        names = np.asarray(self.candidates, dtype=object)
        out = {}
        for i in range(min(self.top_labels, P.shape[1])):
            out[f"{key}_top{i + 1}"] = np.where(have, names[order[:, i]], None)
            out[f"{key}_top{i + 1}_probability"] = np.where(
                have, np.take_along_axis(P, order[:, i : i + 1], 1)[:, 0], np.nan
            )
        return pd.DataFrame(out, index=self.index)


@dataclass(eq=False)
class EmbeddingResult(_FrameLike):
    """One vector per cell: ``X`` (cells x dimensions; NaN rows for cells with no expressed
    gene) for the cells ``index``; ``info`` is what ``uns[key_added]`` holds."""

    index: pd.Index
    X: np.ndarray
    info: dict
    key_added: str = "X_c2s"

    def __post_init__(self) -> None:
        if len(self.X) != len(self.index):
            raise ValueError(f"X has {len(self.X)} rows for {len(self.index)} cells")

    def to_numpy(self) -> np.ndarray:
        """The cells x dimensions matrix."""
        return self.X

    def to_frame(self) -> pd.DataFrame:
        """One row per cell, columns ``c2s_0 .. c2s_{d-1}``."""
        columns = [f"c2s_{j}" for j in range(self.X.shape[1])]
        return pd.DataFrame(self.X, index=self.index, columns=columns)

    def write(self, adata, key_added: str | None = None) -> None:
        """Annotate ``adata`` as ``embed(inplace=True)`` does: ``obsm[key_added]`` and
        ``uns[key_added]``."""
        key = key_added or self.key_added
        rows = _aligned_rows(adata, self.index)
        adata.obsm[key] = self.X if rows is None else self.X[rows]
        adata.uns[key] = self.info

    def take(self, rows) -> EmbeddingResult:
        """The result for the cells at positions ``rows``."""
        rows = np.asarray(rows, dtype=int)
        return replace(self, index=self.index[rows], X=self.X[rows])

    def expand(self, rows, index: pd.Index) -> EmbeddingResult:
        """The result for the cells ``index``: cell ``i`` gets row ``rows[i]``, or NaN where
        ``rows[i]`` is -1. By position, so ids may repeat."""
        return replace(self, index=index, X=_rows_or_nan(self.X, np.asarray(rows, dtype=int)))

    @classmethod
    def concat(cls, parts: Sequence[EmbeddingResult]) -> EmbeddingResult:
        """The cells of ``parts`` one after the other; ``info`` is the first part's."""
        first = parts[0]
        index = first.index.append([p.index for p in parts[1:]])
        return replace(first, index=index, X=np.concatenate([p.X for p in parts]))


def _rows_or_nan(a: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    """Rows ``rows`` of ``a``, NaN (a float, as pandas marks missing) where a row is -1."""
    if a is None:
        return None
    if a.dtype.kind not in "fO":
        a = a.astype(object)
    out = np.full((len(rows), *a.shape[1:]), np.nan, dtype=a.dtype)
    have = rows >= 0
    out[have] = a[rows[have]]
    return out


def _joined(arrays: list[np.ndarray | None]) -> np.ndarray | None:
    return None if arrays[0] is None else np.concatenate(arrays)
