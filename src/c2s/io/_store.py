"""The c2s dataset store: a directory of Parquet shards written as cells are ranked.

```
dataset/
  c2s_dataset.json    schema version, vocab file, normalization, seed, tie rule, source,
                      n_cells, package version, shards, split, fitted inverse model
  vocab.parquet       gene, display_name, n_cells_expressed
  cells-00000.parquet cell_id, genes list<int32>, values list<float32>, split, obs columns
```
Shard ``i`` holds cells ``[i * shard_size, (i + 1) * shard_size)`` and row groups of a fixed
number of cells, so the files are identical whatever the chunk size and worker count.
"""

from __future__ import annotations

import json
import os
import warnings
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from c2s._atomic import atomic_dir
from c2s._errors import C2SError
from c2s._logging import progress
from c2s._version import __version__
from c2s.io._split import SPLITS, assign_splits, parse_fractions
from c2s.sentences import CellSentences, Vocab

SCHEMA_VERSION = 1
META_FILE = "c2s_dataset.json"
VOCAB_FILE = "vocab.parquet"
ROW_GROUP = 1024
DEFAULT_CHUNK = 2048  # cells per read for one worker; divided among workers
RESERVED = ("cell_id", "genes", "values", "split")
TIE_RULE = (
    "values > 0 sorted descending; ties in a random order from a Fisher-Yates shuffle of the "
    "cell's genes (ascending index order) driven by splitmix64 seeded with (seed, cell index)"
)
_COMPRESSION = "zstd"


def shard_name(i: int) -> str:
    return f"cells-{i:05d}.parquet"


# --------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------
def _obs_schema(obs: pd.DataFrame) -> pa.Schema:
    try:
        schema = pa.Schema.from_pandas(obs, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise C2SError(
            f"An obs column cannot be stored ({e}). Convert mixed-type columns to strings, or "
            "leave them out with --obs / obs_keys=."
        ) from e
    return schema.remove_metadata()


def _table_schema(obs_schema: pa.Schema, with_values: bool) -> pa.Schema:
    fields = [pa.field("cell_id", pa.string()), pa.field("genes", pa.list_(pa.int32()))]
    if with_values:
        fields.append(pa.field("values", pa.list_(pa.float32())))
    fields.append(pa.field("split", pa.dictionary(pa.int8(), pa.string())))
    return pa.schema(fields + list(obs_schema))


def _list_array(flat: np.ndarray, offsets: np.ndarray, typ) -> pa.Array:
    off = pa.array((offsets - offsets[0]).astype(np.int32), type=pa.int32())
    return pa.ListArray.from_arrays(off, pa.array(flat, type=typ))


def _cell_columns(schema: pa.Schema, ids, split_codes, obs: pd.DataFrame) -> pa.Table:
    """The per-cell columns of a shard (cell_id, split, obs), converted to Arrow once."""
    lists = ("genes", "values")
    obs_schema = pa.schema([f for f in schema if f.name not in (*lists, "cell_id", "split")])
    obs_tab = pa.Table.from_pandas(obs, schema=obs_schema, preserve_index=False)
    codes = pa.DictionaryArray.from_arrays(
        pa.array(np.asarray(split_codes, dtype=np.int8), pa.int8()),
        pa.array(list(SPLITS), pa.string()),
    )
    return pa.Table.from_arrays(
        [pa.array(np.asarray(ids, dtype=object), pa.string()), codes, *obs_tab.columns],
        schema=pa.schema([schema.field("cell_id"), schema.field("split"), *obs_schema]),
    )


class _ShardWriter:
    """Writes one shard: ranked chunks in, row groups of exactly ``ROW_GROUP`` cells out.

    ``cells`` holds the shard's per-cell columns (cell_id, split, obs) as one Arrow table;
    each added chunk takes the next rows of it. Every row group is combined into contiguous
    buffers before writing, so the file bytes do not depend on how cells were chunked.
    """

    def __init__(self, path: Path, schema: pa.Schema, with_values: bool, cells: pa.Table):
        # Dictionary encoding of the gene lists costs more than it saves; byte-stream-split
        # makes the float values compress well and read fast.
        self.writer = pq.ParquetWriter(
            path,
            schema,
            compression=_COMPRESSION,
            compression_level=1,
            use_dictionary=[f.name for f in schema if f.name not in ("genes", "values")],
            # Min/max statistics of the gene and value lists are never used for filtering.
            write_statistics=[f.name for f in schema if f.name not in ("genes", "values")],
            use_byte_stream_split=["values.list.element"] if with_values else False,
        )
        self.schema = schema
        self.with_values = with_values
        self.cells = cells
        self.cursor = 0  # rows of ``cells`` consumed
        self.pending: pa.Table | None = None

    def add(self, genes, values, offsets):
        """Append ranked cells (offsets start at 0) and write every full row group."""
        n = len(offsets) - 1
        cols = {"genes": _list_array(genes, offsets, pa.int32())}
        if self.with_values:
            cols["values"] = _list_array(values, offsets, pa.float32())
        meta = self.cells.slice(self.cursor, n)
        self.cursor += n
        table = pa.Table.from_arrays(
            [cols[f.name] if f.name in cols else meta.column(f.name) for f in self.schema],
            schema=self.schema,
        )
        self.pending = table if self.pending is None else pa.concat_tables([self.pending, table])
        while self.pending.num_rows >= ROW_GROUP:
            self._emit(ROW_GROUP)

    def _emit(self, n: int):
        self.writer.write_table(self.pending.slice(0, n).combine_chunks())
        self.pending = self.pending.slice(n)

    def close(self):
        if self.pending is not None and self.pending.num_rows:
            self._emit(self.pending.num_rows)
        self.writer.close()


@dataclass
class _ConvertJob:
    """Everything a worker needs to write one shard (picklable for process pools)."""

    source: object  # MatrixSource
    shard: int
    start: int
    stop: int
    path: str
    chunk_size: int
    seed: int
    top_k: int | None
    normalize: bool
    with_values: bool
    obs_keys: list[str]
    split_codes: np.ndarray
    schema: pa.Schema
    n_genes: int
    numba_threads: int | None = None


@dataclass
class _ShardResult:
    shard: int
    n_cells: int
    n_expressed: np.ndarray
    length_hist: np.ndarray  # histogram of sentence lengths (bincount)


def _check_counts(data: np.ndarray, label: str):
    """--normalize needs integer counts. (NaN and negative values are caught by the kernel.)"""
    if data.size and not np.array_equal(data, np.round(data)):
        raise C2SError(
            f"--normalize expects raw counts, but {label} has non-integer values: it looks "
            "normalized already. Drop --normalize."
        )


def _run_job(job: _ConvertJob, on_chunk=None) -> _ShardResult:
    from c2s.pp import log10_normalize
    from c2s.sentences import rank_csr

    if job.numba_threads:
        import numba

        numba.set_num_threads(job.numba_threads)
    src = job.source
    cells = _cell_columns(
        job.schema,
        src.obs.index[job.start : job.stop].astype(str),
        job.split_codes,
        src.obs.iloc[job.start : job.stop][job.obs_keys],
    )
    writer = _ShardWriter(Path(job.path), job.schema, job.with_values, cells)
    n_expressed = np.zeros(job.n_genes, dtype=np.int64)
    hist = np.zeros(1, dtype=np.int64)
    # Parquet encoding runs in a second thread while the next chunk is read and ranked
    # (both release the GIL); at most one chunk waits, which bounds memory to two chunks.
    from concurrent.futures import ThreadPoolExecutor

    pending = None
    with ThreadPoolExecutor(1) as io_thread:
        try:
            for a, b, indptr, indices, data in src.iter_rows(job.start, job.stop, job.chunk_size):
                if job.normalize:
                    _check_counts(data, src.label)
                    X = log10_normalize(
                        sp.csr_matrix(
                            (data, indices, indptr - indptr[0]), shape=(b - a, job.n_genes)
                        )
                    )
                    indptr, indices, data = X.indptr, X.indices, X.data
                r = rank_csr(
                    indptr, indices, data, job.n_genes, seed=job.seed, top_k=job.top_k, row_offset=a
                )
                del indptr, indices, data
                n_expressed += r.n_expressed
                h = np.bincount(np.diff(r.offsets))
                if len(h) > len(hist):
                    hist = np.pad(hist, (0, len(h) - len(hist)))
                hist[: len(h)] += h
                if pending is not None:
                    pending.result()
                if on_chunk is not None:
                    on_chunk(b - a)
                pending = io_thread.submit(
                    writer.add, r.genes, r.values if job.with_values else None, r.offsets
                )
            if pending is not None:
                pending.result()
        finally:
            if pending is not None:
                pending.exception()  # wait for the writer before closing the file
            writer.close()
    return _ShardResult(job.shard, job.stop - job.start, n_expressed, hist)


def _executor(workers: int, use_processes: bool) -> Executor | None:
    if workers <= 1:
        return None
    if use_processes:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the parent's OpenMP threads (numba) do not survive a fork.
        return ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(workers)


def convert(
    data,
    out_dir: str | os.PathLike,
    *,
    layer: str | None = None,
    use_raw: bool = False,
    var_names: str | None = None,
    obs_keys: list[str] | None = None,
    top_k: int | None = None,
    seed: int = 0,
    normalize: bool = False,
    with_values: bool = True,
    split=(0.8, 0.1, 0.1),
    stratify: str | None = None,
    chunk_size: int | None = None,
    shard_size: int = 65536,
    workers: int = 1,
    overwrite: bool = False,
    progress_bar: bool | None = None,
) -> C2SDataset:
    """Rank an AnnData (or an .h5ad file, streamed) into a c2s dataset directory.

    Parameters
    ----------
    data
        AnnData (in memory or backed) or a path to an ``.h5ad`` file; files are read in row
        chunks, so they may be larger than memory.
    out_dir
        Dataset directory to create (written to a temporary sibling, renamed when complete).
    layer, use_raw
        Rank ``adata.layers[layer]`` or ``adata.raw.X`` instead of ``adata.X``.
    var_names
        A ``var`` column to take gene names from (e.g. symbols when the index holds IDs).
    obs_keys
        ``obs`` columns to carry (default: all).
    top_k
        Keep only the top ``top_k`` genes per cell (default: full length).
    seed
        Seed for tie-breaking and for the split.
    normalize
        The input holds raw counts: store ``log10(1 + cp10k)`` values (ranks are unchanged).
    with_values
        Store expression values next to the gene indices (needed to fit an inverse model).
    split
        Train / validation / test fractions, stored as the ``split`` column.
    stratify
        ``obs`` column whose labels are split separately (e.g. ``"cell_type"``).
    chunk_size
        Cells read and ranked at a time per worker (bounds memory; does not change the
        output). Default for files: ``2048 // workers`` (at least 256), which keeps a
        3,600-genes-per-cell conversion under 1.5 GB; four times that for in-memory data.
    shard_size
        Cells per Parquet shard (the unit of parallel work).
    workers
        Shards written in parallel (processes for files, threads for in-memory data).
    overwrite
        Replace an existing ``out_dir``.
    progress_bar
        Show a progress bar (default: when stderr is a terminal).

    Returns
    -------
    The written :class:`C2SDataset`.
    """
    from c2s._atomic import check_output
    from c2s._matrix import open_source
    from c2s.pp import check_expression, require_rankable
    from c2s.sentences import check_gene_names

    out_dir = check_output(out_dir, overwrite=overwrite)  # fail before any work
    src = open_source(data, layer=layer, use_raw=use_raw)
    if chunk_size is None:
        # In-memory input is resident already: bigger chunks mean fewer kernel launches.
        base = DEFAULT_CHUNK if src.path is not None else 4 * DEFAULT_CHUNK
        chunk_size = max(256, base // max(workers, 1))
    if chunk_size < 1 or shard_size < 1 or workers < 1:
        raise C2SError("chunk_size, shard_size and workers must be positive.")
    n_cells, n_genes = src.shape
    if n_cells == 0:
        raise C2SError(f"{src.label} has no cells; nothing to convert.")
    names = check_gene_names(src.gene_names(var_names), where=f"the gene names of {src.label}")
    sample = src.read_rows(0, min(n_cells, 256))
    check = check_expression(sample, n_rows=None)
    if check.kind == "scaled":  # the alternatives are only needed for the error message
        require_rankable(check, label=src.label, alternatives=_alternatives(data, src))
    require_rankable(check, label=src.label, alternatives=[])
    if normalize and check.kind not in ("counts", "empty"):
        raise C2SError(
            f"--normalize expects raw counts, but {src.label} looks {check.describe()}. "
            "Drop --normalize."
        )
    if check.kind == "counts" and not normalize:
        warnings.warn(
            f"{src.label} looks like raw counts. The cell sentences are the same either way, "
            "but the stored values will be counts; pass normalize=True (--normalize) to store "
            "log10(1 + cp10k) values as the released models and the inverse transform expect.",
            stacklevel=2,
        )
    obs = src.obs
    obs_keys = list(obs.columns) if obs_keys is None else list(obs_keys)
    missing = [k for k in obs_keys if k not in obs.columns]
    if missing:
        raise C2SError(f"obs has no column(s) {missing}; available: {list(obs.columns)}.")
    clash = [k for k in obs_keys if k in RESERVED]
    if clash:
        raise C2SError(
            f"obs column(s) {clash} clash with reserved dataset columns {list(RESERVED)}; "
            "rename them or choose the columns to carry with --obs / obs_keys=."
        )
    if stratify is not None and stratify not in obs.columns:
        raise C2SError(f"Cannot stratify by {stratify!r}: no such obs column.")
    fractions = parse_fractions(split)
    codes = assign_splits(
        n_cells, fractions, seed=seed, stratify=None if stratify is None else obs[stratify]
    )
    schema = _table_schema(_obs_schema(obs[obs_keys]), with_values)
    bounds = [(s, min(s + shard_size, n_cells)) for s in range(0, n_cells, shard_size)]
    use_processes = src.path is not None
    n_threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None

    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        jobs = [
            _ConvertJob(
                src,
                i,
                a,
                b,
                str(tmp / shard_name(i)),
                chunk_size,
                seed,
                top_k,
                normalize,
                with_values,
                obs_keys,
                codes[a:b],
                schema,
                n_genes,
                n_threads,
            )
            for i, (a, b) in enumerate(bounds)
        ]
        results = _run_jobs(jobs, workers, use_processes, progress_bar, n_cells)
        n_expressed = np.sum([r.n_expressed for r in results], axis=0)
        hist_len = max(len(r.length_hist) for r in results)
        hist = np.sum(
            [np.pad(r.length_hist, (0, hist_len - len(r.length_hist))) for r in results], axis=0
        )
        _finish(
            tmp,
            Vocab.from_names(names, n_expressed),
            bounds,
            source={
                "file": None if src.path is None else os.path.basename(src.path),
                "matrix": src.label,
                "var_names": var_names,
                "expression": check.kind,
            },
            normalization=_normalization_note(check.kind, normalize),
            ranking={"seed": int(seed), "top_k": top_k, "tie_rule": TIE_RULE},
            has_values=bool(with_values),
            obs_columns=obs_keys,
            split=_split_meta(codes, fractions, seed, stratify),
            lengths=_length_stats(hist),
        )
    return C2SDataset(out_dir)


def _alternatives(data, src) -> list[str]:
    try:
        import anndata as ad
    except ImportError:  # pragma: no cover
        return []
    out = []
    if isinstance(data, ad.AnnData) and not data.isbacked:
        if data.raw is not None and src.where != "raw":
            out.append("adata.raw (--raw)")
        out += [f"layer {k!r} (--layer {k})" for k in data.layers if f"layers/{k}" != src.where]
        return out
    path = src.path
    if path is None:
        return out
    import h5py

    with h5py.File(path, "r") as f:
        if "raw" in f and src.where != "raw":
            out.append("adata.raw (--raw)")
        out += [
            f"layer {k!r} (--layer {k})" for k in f.get("layers", {}) if f"layers/{k}" != src.where
        ]
    return out


def _run_jobs(jobs, workers, use_processes, progress_bar, n_cells) -> list[_ShardResult]:
    bar = progress(total=n_cells, desc="ranking cells", unit="cells", enabled=progress_bar)
    results = []
    pool = _executor(min(workers, len(jobs)), use_processes)
    try:
        if pool is None:
            for job in jobs:
                results.append(_run_job(job, on_chunk=bar.update))
        else:
            from concurrent.futures import as_completed

            futures = [pool.submit(_run_job, j) for j in jobs]
            for fut in as_completed(futures):
                res = fut.result()
                results.append(res)
                bar.update(res.n_cells)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        bar.close()
    return sorted(results, key=lambda r: r.shard)


def _normalization_note(kind: str, normalized_here: bool) -> dict:
    if normalized_here:
        return {"values": "log10(1 + x / total * 1e4)", "applied_by": "c2s", "input": "counts"}
    return {"values": "as given", "applied_by": None, "input": kind}


def _split_meta(codes, fractions, seed, stratify) -> dict:
    counts = np.bincount(codes, minlength=3)
    return {
        "seed": int(seed),
        "fractions": dict(zip(SPLITS, fractions, strict=True)),
        "counts": {s: int(c) for s, c in zip(SPLITS, counts, strict=True)},
        "stratify": stratify,
        "column": "split",
    }


def _length_stats(hist: np.ndarray) -> dict:
    n = int(hist.sum())
    if n == 0:
        return {"mean": 0.0, "min": 0, "median": 0, "max": 0, "n_empty": 0}
    lens = np.arange(len(hist))
    cdf = np.cumsum(hist)
    return {
        "mean": float((hist * lens).sum() / n),
        "min": int(lens[hist > 0][0]),
        "median": int(np.searchsorted(cdf, (n + 1) // 2)),
        "max": int(lens[hist > 0][-1]),
        "n_empty": int(hist[0]),
    }


def _finish(directory: Path, vocab: Vocab, bounds, **fields) -> None:
    """Write vocab.parquet and c2s_dataset.json next to the shards in ``directory``."""
    pq.write_table(
        pa.Table.from_pandas(vocab.to_frame(), preserve_index=False), directory / VOCAB_FILE
    )
    meta = {
        "format": "c2s-dataset",
        "schema_version": SCHEMA_VERSION,
        "package_version": __version__,
        "vocab_file": VOCAB_FILE,
        "n_cells": int(bounds[-1][1]),
        "n_genes": len(vocab),
        "shards": [{"file": shard_name(i), "n_cells": b - a} for i, (a, b) in enumerate(bounds)],
        **fields,
        "inverse": None,
    }
    _write_meta(directory, meta)


def _write_meta(directory: Path, meta: dict) -> None:
    """Write c2s_dataset.json atomically (temp file + rename)."""
    path = Path(directory) / META_FILE
    tmp = path.with_name(f".{META_FILE}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def write_sentences(
    sentences: CellSentences,
    out_dir: str | os.PathLike,
    *,
    obs_keys: list[str] | None = None,
    seed: int = 0,
    split=(0.8, 0.1, 0.1),
    split_codes: np.ndarray | None = None,
    shard_size: int = 65536,
    source: dict | None = None,
    overwrite: bool = False,
) -> C2SDataset:
    """Write in-memory :class:`~c2s.sentences.CellSentences` as a c2s dataset."""
    n = sentences.n_cells
    if n == 0:
        raise C2SError("There are no cells to write.")
    obs = sentences.obs
    obs_keys = [k for k in obs.columns if k not in RESERVED] if obs_keys is None else list(obs_keys)
    fractions = parse_fractions(split)
    codes = (
        assign_splits(n, fractions, seed=seed)
        if split_codes is None
        else np.asarray(split_codes, np.int8)
    )
    with_values = sentences.values is not None
    schema = _table_schema(_obs_schema(obs[obs_keys]), with_values)
    ids = np.asarray(obs.index.astype(str), dtype=object)
    bounds = [(s, min(s + shard_size, n)) for s in range(0, n, shard_size)]
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for i, (a, b) in enumerate(bounds):
            cells = _cell_columns(schema, ids[a:b], codes[a:b], obs.iloc[a:b][obs_keys])
            w = _ShardWriter(tmp / shard_name(i), schema, with_values, cells)
            lo, hi = sentences.offsets[a], sentences.offsets[b]
            w.add(
                sentences.genes[lo:hi],
                None if not with_values else sentences.values[lo:hi],
                sentences.offsets[a : b + 1] - lo,
            )
            w.close()
        _finish(
            tmp,
            sentences.vocab,
            bounds,
            source=source or {"file": None, "matrix": "CellSentences"},
            normalization={"values": "as given" if with_values else None},
            ranking={"seed": int(seed), "top_k": None, "tie_rule": TIE_RULE},
            has_values=with_values,
            obs_columns=obs_keys,
            split=_split_meta(codes, fractions, seed, None),
            lengths=_length_stats(np.bincount(sentences.lengths)),
        )
    return C2SDataset(out_dir)


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------
class C2SDataset:
    """A c2s dataset directory, read lazily with pyarrow.

    Parameters
    ----------
    path
        The dataset directory written by :func:`convert` or :func:`write_sentences`.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        meta_path = self.path / META_FILE
        if not meta_path.exists():
            hint = ""
            if (self.path / "state.json").exists() or (self.path / "dataset_info.json").exists():
                hint = " It looks like a reference-package Arrow dataset: import it with `c2s import-reference`."
            raise C2SError(f"{str(self.path)!r} is not a c2s dataset (no {META_FILE}).{hint}")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("schema_version", 0) > SCHEMA_VERSION:
            raise C2SError(
                f"{self.path} was written by a newer c2s (schema {self.meta['schema_version']}); "
                "upgrade c2s to read it."
            )
        self._vocab: Vocab | None = None

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
            self._vocab = Vocab.from_frame(
                pq.read_table(self.path / self.meta["vocab_file"]).to_pandas()
            )
        return self._vocab

    @property
    def obs_columns(self) -> list[str]:
        return list(self.meta["obs_columns"])

    @property
    def has_values(self) -> bool:
        return bool(self.meta.get("has_values"))

    def _read(self, columns: list[str]) -> pa.Table:
        return pa.concat_tables([pq.read_table(f, columns=columns) for f in self.files])

    def _read_rows(self, columns: list[str], rows) -> pa.Table:
        """``columns`` of the cells ``rows`` (all when ``None``), in the order given; each shard
        is read only if it holds a requested cell, and only its requested rows are kept."""
        if rows is None:
            return self._read(columns)
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.n_cells):
            raise C2SError(f"Row indices must lie in [0, {self.n_cells}).")
        order = np.argsort(rows, kind="stable")
        wanted = rows[order]
        parts, start = [], 0
        for f, shard in zip(self.files, self.meta["shards"], strict=True):
            stop = start + shard["n_cells"]
            lo, hi = np.searchsorted(wanted, [start, stop])
            if hi > lo:
                t = pq.read_table(f, columns=columns)
                parts.append(t.take(pa.array(wanted[lo:hi] - start)))
            start = stop
        if not parts:
            return self._read(columns).slice(0, 0)
        tab = pa.concat_tables(parts)
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return tab.take(pa.array(back))

    def obs(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The carried obs columns plus ``split``, indexed by cell id (no gene lists read)."""
        cols = self.obs_columns if columns is None else list(columns)
        tab = self._read(["cell_id", "split", *[c for c in cols if c != "split"]])
        df = tab.to_pandas()
        return df.set_index("cell_id").rename_axis(None)

    def split_codes(self) -> np.ndarray:
        """Split per cell as codes (0 train, 1 validation, 2 test)."""
        arr = self._read(["split"]).column("split").combine_chunks()
        return np.asarray(arr.indices, dtype=np.int8)

    def split_indices(self) -> dict[str, np.ndarray]:
        """Row indices of each split."""
        codes = self.split_codes()
        return {s: np.flatnonzero(codes == i) for i, s in enumerate(SPLITS)}

    def sentences(
        self,
        *,
        split: str | None = None,
        rows=None,
        top_k: int | None = None,
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
        top_k
            Keep only the first ``top_k`` genes of each cell.
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
        cols = self.obs_columns if obs_columns is None else list(obs_columns)
        want_values = values and self.has_values
        read = ["cell_id", "genes", *(["values"] if want_values else []), "split", *cols]
        tab = self._read_rows(read, rows)
        genes_col = tab.column("genes").combine_chunks()
        offsets = np.asarray(genes_col.offsets, dtype=np.int64)
        genes = np.asarray(genes_col.values, dtype=np.int32)
        vals = None
        if want_values:
            vcol = tab.column("values").combine_chunks()
            vals = np.asarray(vcol.values, dtype=np.float32)
        if offsets[0] != 0:  # a sliced list array: rebase
            genes = genes[offsets[0] : offsets[-1]]
            if vals is not None:
                vals = vals[offsets[0] : offsets[-1]]
            offsets = offsets - offsets[0]
        obs = (
            tab.select(["cell_id", "split", *cols])
            .to_pandas()
            .set_index("cell_id")
            .rename_axis(None)
        )
        cs = CellSentences(genes, offsets, self.vocab, obs, vals)
        return cs.top_k(top_k) if top_k is not None else cs

    def texts(self, k: int | None = None, *, split: str | None = None) -> list[str]:
        """Sentences as text (upper-cased gene names, space-separated), top ``k`` if given."""
        return self.sentences(split=split, values=False, obs_columns=[]).to_text(k)

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
        _write_meta(self.path, self.meta)

    def info(self) -> dict:
        """A summary: cells, genes, lengths, obs columns, split counts, fitted inverse."""
        m = self.meta
        return {
            "path": str(self.path),
            "n_cells": m["n_cells"],
            "n_genes": m["n_genes"],
            "n_shards": len(m["shards"]),
            "has_values": m.get("has_values"),
            "top_k": m["ranking"].get("top_k"),
            "seed": m["ranking"].get("seed"),
            "lengths": m.get("lengths"),
            "obs_columns": m.get("obs_columns"),
            "split": m.get("split", {}).get("counts"),
            "source": m.get("source"),
            "normalization": m.get("normalization"),
            "inverse": m.get("inverse"),
            "package_version": m.get("package_version"),
        }


def read_dataset(path: str | os.PathLike) -> C2SDataset:
    """Open a c2s dataset directory."""
    return C2SDataset(path)
