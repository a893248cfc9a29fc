"""Reading datasets: :class:`C2SDataset`, a dataset directory read lazily with pyarrow."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from c2s._deprecate import renamed, warn_renamed
from c2s._errors import C2SError
from c2s.io._meta import META_FILE, RESERVED, SCHEMA_VERSION, write_meta
from c2s.io._split import SPLITS
from c2s.sentences import CellSentences, Vocab, first_k

_DAMAGED = (
    "The dataset is damaged: `c2s info --check DATASET` lists what is wrong; convert it again."
)
_REQUIRED = ("n_cells", "n_genes", "shards", "vocab_file", "obs_columns")
_SECTIONS = ("ranking", "split", "lengths", "inverse")  # read as objects


def _check_meta(path: Path, meta: dict) -> None:
    """The metadata has what readers need, and every file it names lies inside the dataset."""
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise C2SError(f"{path / META_FILE} lacks {missing}. {_DAMAGED}")
    try:
        names = [meta["vocab_file"], *(s["file"] for s in meta["shards"])]
        counts = [int(s["n_cells"]) for s in meta["shards"]]
    except (TypeError, KeyError, ValueError) as e:
        raise C2SError(f"{path / META_FILE} has a malformed shard list ({e}). {_DAMAGED}") from e
    root = os.path.realpath(path)
    for name in names:
        bad = not isinstance(name, str) or Path(name).name != name or name in ("", ".", "..")
        if bad or os.path.dirname(os.path.realpath(path / name)) != root:
            raise C2SError(
                f"{path / META_FILE} names the file {name!r}, which is not a file of the dataset "
                "folder itself; c2s reads nothing outside it."
            )
    if sum(counts) != int(meta["n_cells"]):
        raise C2SError(
            f"{path / META_FILE}: its shards hold {sum(counts)} cells, not {meta['n_cells']}. "
            f"{_DAMAGED}"
        )
    cols = meta["obs_columns"]
    if (
        not isinstance(cols, list)
        or not all(isinstance(c, str) and c for c in cols)
        or len(set(cols)) != len(cols)
        or set(cols) & set(RESERVED)
    ):
        raise C2SError(
            f"{path / META_FILE}: obs_columns {cols!r} must list distinct column names other "
            f"than {list(RESERVED)}. {_DAMAGED}"
        )
    odd = [k for k in _SECTIONS if meta.get(k) is not None and not isinstance(meta[k], dict)]
    if odd:
        raise C2SError(f"{path / META_FILE}: {odd} must each be a JSON object. {_DAMAGED}")


class C2SDataset:
    """A c2s dataset directory, read lazily with pyarrow. Open one with
    :func:`read_dataset` (calling the class itself is deprecated: it warns).

    Parameters
    ----------
    path
        The dataset directory written by :func:`convert` or :func:`write_sentences`.
    """

    def __init__(self, path: str | os.PathLike):
        warn_renamed("C2SDataset(path)", "c2s.io.read_dataset(path)")
        self._load(path)

    @classmethod
    def _from_path(cls, path: str | os.PathLike) -> C2SDataset:
        """The dataset at ``path`` (what :func:`read_dataset` returns; no warning)."""
        dataset = cls.__new__(cls)
        dataset._load(path)
        return dataset

    def _load(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        meta_path = self.path / META_FILE
        if not meta_path.exists():
            hint = ""
            if (self.path / "state.json").exists() or (self.path / "dataset_info.json").exists():
                hint = (
                    " It looks like a reference-package Arrow dataset: import it with "
                    "`c2s import-reference`."
                )
            raise C2SError(f"{str(self.path)!r} is not a c2s dataset (no {META_FILE}).{hint}")
        try:
            self.meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as e:
            raise C2SError(f"Cannot read {meta_path}: {e}. {_DAMAGED}") from e
        if not isinstance(self.meta, dict):
            raise C2SError(f"{meta_path} does not hold c2s dataset metadata. {_DAMAGED}")
        if self.meta.get("schema_version", 0) > SCHEMA_VERSION:
            raise C2SError(
                f"{self.path} was written by a newer c2s (schema {self.meta['schema_version']}); "
                "upgrade c2s to read it."
            )
        _check_meta(self.path, self.meta)
        self._vocab: Vocab | None = None
        self._view: dict[str, np.ndarray] | None = None  # split -> rows (a subsample view)

    def __repr__(self) -> str:
        return f"C2SDataset({str(self.path)!r}: {self.n_cells} cells, {self.meta['n_genes']} genes)"

    def __len__(self) -> int:
        return self.n_cells

    @property
    def n_cells(self) -> int:
        return int(self.meta["n_cells"])

    @property
    def files(self) -> list[Path]:
        return [self.path / s["file"] for s in self.meta["shards"]]

    @property
    def vocab(self) -> Vocab:
        if self._vocab is None:
            vocab = Vocab.from_frame(self._table(self.path / self.meta["vocab_file"]).to_pandas())
            if len(vocab) != int(self.meta["n_genes"]):
                raise C2SError(
                    f"{self.path}: the vocabulary has {len(vocab)} genes, the metadata says "
                    f"{self.meta['n_genes']}. {_DAMAGED}"
                )
            self._vocab = vocab
        return self._vocab

    @property
    def obs_columns(self) -> list[str]:
        return list(self.meta["obs_columns"])

    @property
    def has_values(self) -> bool:
        return bool(self.meta.get("has_values"))

    def _table(self, f: Path, columns: list[str] | None = None) -> pa.Table:
        """One Parquet file of the dataset; a missing or damaged file is a C2SError."""
        try:
            return pq.read_table(f, columns=columns)
        except (OSError, pa.ArrowException) as e:
            raise C2SError(
                f"{f.name} of {self.path} cannot be read ({' '.join(str(e).split())[:200]}). "
                f"{_DAMAGED}"
            ) from e

    def _read(self, columns: list[str]) -> pa.Table:
        return pa.concat_tables([self._table(f, columns) for f in self.files])

    def _shard_parts(self, columns: list[str], rows):
        """``columns`` of the cells ``rows`` (all when ``None``), one table per shard that
        holds any of them, in ascending row order; and the permutation that puts the
        concatenated parts back in the order ``rows`` gave (``None`` when already in it)."""
        if rows is None:
            return ((self._table(f, columns) for f in self.files), None)
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.n_cells):
            raise C2SError(f"Row indices must lie in [0, {self.n_cells}).")
        order = np.argsort(rows, kind="stable")
        wanted = rows[order]
        back = None
        if not np.array_equal(order, np.arange(len(order))):
            back = np.empty_like(order)
            back[order] = np.arange(len(order))

        def parts():
            start = 0
            for f, shard in zip(self.files, self.meta["shards"], strict=True):
                stop = start + shard["n_cells"]
                lo, hi = np.searchsorted(wanted, [start, stop])
                if hi > lo:
                    t = self._table(f, columns)
                    if hi - lo < t.num_rows:
                        t = t.take(pa.array(wanted[lo:hi] - start))
                    yield t
                start = stop

        return parts(), back

    def obs(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The carried obs columns plus ``split``, indexed by cell id (no gene lists read)."""
        cols = self.obs_columns if columns is None else list(columns)
        tab = self._read(["cell_id", "split", *[c for c in cols if c != "split"]])
        df = tab.to_pandas()
        return df.set_index("cell_id").rename_axis(None)

    def split_codes(self) -> np.ndarray:
        """Split per cell as codes (0 train, 1 validation, 2 test)."""
        parts = []
        for f in self.files:
            arr = self._table(f, ["split"]).column("split").combine_chunks()
            # the codes are the dictionary's indices: any other dictionary would mislabel cells
            if not pa.types.is_dictionary(arr.type) or arr.dictionary.to_pylist() != list(SPLITS):
                raise C2SError(
                    f"{f.name} of {self.path}: the split column is not {list(SPLITS)}. {_DAMAGED}"
                )
            if arr.null_count:
                raise C2SError(
                    f"{f.name} of {self.path}: {arr.null_count} cells have no split. {_DAMAGED}"
                )
            parts.append(np.asarray(arr.indices, dtype=np.int8))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int8)

    def split_indices(self) -> dict[str, np.ndarray]:
        """Row indices of each split (of this view's cells, for a :meth:`subsample`)."""
        if self._view is not None:
            return {s: rows.copy() for s, rows in self._view.items()}
        codes = self.split_codes()
        return {s: np.flatnonzero(codes == i) for i, s in enumerate(SPLITS)}

    def subsample(
        self, max_cells: dict[str, int | None], *, seed: int = 0, stratify: str | None = None
    ) -> C2SDataset:
        """A view with at most ``max_cells[split]`` cells of each named split: a seeded
        sample, drawn per value of the obs column ``stratify`` in proportion (every value
        keeps at least one cell). Other splits keep all their cells. The view reads only its
        cells (``sentences()``, ``split_indices()``); ``obs()`` still lists every cell."""
        idx = self.split_indices()
        unknown = sorted(set(max_cells) - set(SPLITS))
        if unknown:
            raise C2SError(f"Unknown split(s) {unknown}; choose from {list(SPLITS)}.")
        labels = None
        if stratify is not None and stratify in self.obs_columns:
            labels = self.obs([stratify])[stratify].astype(str).to_numpy()
        rng = np.random.default_rng(seed)
        view = {}
        for split, rows in idx.items():
            cap = max_cells.get(split)
            if cap is not None and cap < 1:
                raise C2SError(f"max_cells for {split!r} must be at least 1, not {cap}.")
            view[split] = rows if cap is None or len(rows) <= cap else _draw(rows, cap, labels, rng)
        out = copy.copy(self)
        out._view = view
        return out

    @renamed(top_k="n_genes")
    def sentences(
        self,
        *,
        split: str | None = None,
        rows=None,
        n_genes: int | None = None,
        values: bool = True,
        obs_columns: list[str] | None = None,
    ) -> CellSentences:
        """Load cells into :class:`~c2s.sentences.CellSentences`.

        Parameters
        ----------
        split
            Only ``"train"``, ``"validation"`` or ``"test"`` cells.
        rows
            Only these row indices (use either ``split`` or ``rows``).
        n_genes
            Keep only the first ``n_genes`` genes of each cell.
        values
            Load the stored expression values too (if the dataset has them).
        obs_columns
            obs columns to load (default: all carried ones).
        """
        if split is not None and rows is not None:
            raise C2SError("Pass either split= or rows=, not both.")
        if split is not None:
            if split not in SPLITS:
                raise C2SError(f"Unknown split {split!r}; choose one of {list(SPLITS)}.")
            rows = self.split_indices()[split]
        elif rows is None and self._view is not None:
            rows = np.sort(np.concatenate(list(self._view.values())))
        cols = self.obs_columns if obs_columns is None else list(obs_columns)
        want_values = values and self.has_values
        read = ["cell_id", "genes", *(["values"] if want_values else []), "split", *cols]
        parts, back = self._shard_parts(read, rows)
        # One shard at a time: its genes (cut to n_genes) are copied into the result, its
        # Arrow buffers freed, so the read never holds more than one shard beyond the result.
        n_rows = self.n_cells if rows is None else len(rows)
        cap = None if n_genes is None else n_rows * n_genes
        genes = _Joined(np.int32, cap)
        vals = _Joined(np.float32, cap) if want_values else None
        offsets, obs_tabs = [], []
        for t in parts:
            g, o, v = _lists(t, want_values, n_genes)
            genes.add(g)
            if vals is not None:
                vals.add(v)
            offsets.append(o)
            obs_tabs.append(t.select(["cell_id", "split", *cols]))
            del t, g, v
            # Arrow's allocator keeps freed pages; on a large dataset every shard's read
            # buffers would stay in the process until it ends
            pa.default_memory_pool().release_unused()
        if not obs_tabs:
            obs_tabs = [self._table(self.files[0], ["cell_id", "split", *cols]).slice(0, 0)]
        obs = pa.concat_tables(obs_tabs).to_pandas().set_index("cell_id").rename_axis(None)
        try:
            cs = CellSentences(
                genes.result(),
                _join_offsets(offsets),
                self.vocab,
                obs,
                None if vals is None else vals.result(),
            )
        except C2SError as e:  # e.g. gene indices outside the vocabulary
            raise C2SError(f"{self.path}: {e} {_DAMAGED}") from e
        return cs if back is None else cs.take(back)

    @renamed(k="n_genes")
    def texts(self, n_genes: int | None = None, *, split: str | None = None) -> list[str]:
        """Sentences as text (upper-cased gene names, space-separated), the first ``n_genes``
        genes of each if given."""
        return self.sentences(split=split, values=False, obs_columns=[]).to_text(n_genes)

    def to_hf(self, *, split: str | None = None):
        """The shards opened with Hugging Face ``datasets`` (``load_dataset("parquet")``).

        Returns a ``datasets.Dataset``; with ``split`` only that split's rows.
        """
        try:
            import datasets
        except ImportError as e:
            raise ImportError(
                "Opening with Hugging Face datasets needs: pip install 'c2s[hf]'"
            ) from e
        ds = datasets.load_dataset(
            "parquet", data_files=[str(f) for f in self.files], split="train"
        )
        if split is not None:
            if split not in SPLITS:
                raise C2SError(f"Unknown split {split!r}; choose one of {list(SPLITS)}.")
            ds = ds.select(self.split_indices()[split])
        return ds

    def update_meta(self, **fields) -> None:
        """Change fields of c2s_dataset.json (atomically)."""
        self.meta.update(fields)
        write_meta(self.path, self.meta)

    def check(self) -> dict:
        """Read every file and verify it against the metadata (see
        :func:`c2s.io.check_dataset`): ``{"ok": bool, "problems": [...], ...}``."""
        from c2s.io._check import check_dataset

        return check_dataset(self)

    def info(self) -> dict:
        """A summary: cells, genes, lengths, obs columns, split counts, fitted inverse."""
        m = self.meta
        return {
            "path": str(self.path),
            "n_cells": m["n_cells"],
            "n_genes": m["n_genes"],
            "n_shards": len(m["shards"]),
            "has_values": m.get("has_values"),
            "top_k": (m.get("ranking") or {}).get("top_k"),
            "seed": (m.get("ranking") or {}).get("seed"),
            "lengths": m.get("lengths"),
            "obs_columns": m.get("obs_columns"),
            "split": (m.get("split") or {}).get("counts"),
            "source": m.get("source"),
            "normalization": m.get("normalization"),
            "inverse": m.get("inverse"),
            "package_version": m.get("package_version"),
        }


def _lists(t: pa.Table, values: bool, n_genes: int | None):
    """A table's gene lists (and values) as flat arrays with offsets from 0, cut to the
    first ``n_genes`` genes of each cell."""
    col = t.column("genes").combine_chunks()
    off = np.asarray(col.offsets, dtype=np.int64)
    genes = np.asarray(col.values, dtype=np.int32)[off[0] : off[-1]]
    vals = None
    if values:
        vcol = t.column("values").combine_chunks()
        vals = np.asarray(vcol.values, dtype=np.float32)[off[0] : off[-1]]
    off = off - off[0]
    if n_genes is not None and (np.diff(off) > n_genes).any():
        flat, off = first_k(off, n_genes)
        genes = genes[flat]
        vals = None if vals is None else vals[flat]
    # uncut arrays are views that keep only the shard's gene (and value) buffers alive
    return genes, off, vals


class _Joined:
    """Flat arrays joined as they arrive: into one buffer of ``cap`` entries when an upper
    bound is known (pages never written take no memory), else concatenated at the end."""

    def __init__(self, dtype, cap: int | None):
        self.dtype = dtype
        self.buf = None if cap is None else np.empty(cap, dtype=dtype)
        self.parts: list[np.ndarray] = []
        self.n = 0

    def add(self, a: np.ndarray) -> None:
        if self.buf is None:
            self.parts.append(a)
        else:
            self.buf[self.n : self.n + len(a)] = a
        self.n += len(a)

    def result(self) -> np.ndarray:
        if self.buf is None:
            return np.concatenate(self.parts) if self.parts else np.zeros(0, self.dtype)
        out = self.buf[: self.n]
        return out.copy() if 2 * self.n < len(self.buf) else out  # much slack: let it go


def _join_offsets(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.zeros(1, dtype=np.int64)
    shift = np.cumsum([0, *[p[-1] for p in parts[:-1]]])
    return np.concatenate([[0], *[p[1:] + s for p, s in zip(parts, shift, strict=True)]])


def _draw(rows: np.ndarray, n: int, labels, rng) -> np.ndarray:
    """``n`` of ``rows`` at random (about ``n``, at least one per label, when stratified)."""
    if labels is None:
        return np.sort(rng.choice(rows, n, replace=False))
    lab = labels[rows]
    values, counts = np.unique(lab, return_counts=True)
    take = np.maximum(1, np.round(counts * n / len(rows)).astype(int))
    parts = [
        rng.choice(rows[lab == v], min(t, c), replace=False)
        for v, t, c in zip(values, take, counts, strict=True)
    ]
    return np.sort(np.concatenate(parts))


def read_dataset(path: str | os.PathLike) -> C2SDataset:
    """Open a c2s dataset directory (the one way to open one; :class:`C2SDataset` is what
    it returns)."""
    return C2SDataset._from_path(path)


def as_dataset(dataset: C2SDataset | str | os.PathLike) -> C2SDataset:
    """The c2s dataset ``dataset`` itself, or the one at that path (:func:`read_dataset`,
    with its errors): THE "dataset or its path" check."""
    return dataset if isinstance(dataset, C2SDataset) else read_dataset(dataset)
