"""Writing shards: ranked chunks in, Parquet row groups of a fixed size out; the per-shard
conversion job that workers run, and the pool that runs them."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from c2s._errors import C2SError
from c2s._logging import progress
from c2s.io._meta import ROW_GROUP
from c2s.io._split import SPLITS

_COMPRESSION = "zstd"


def obs_schema(obs: pd.DataFrame) -> pa.Schema:
    try:
        schema = pa.Schema.from_pandas(obs, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise C2SError(
            f"An obs column cannot be stored ({e}). Convert mixed-type columns to strings, or "
            "leave them out with --obs / obs_keys=."
        ) from e
    return schema.remove_metadata()


def table_schema(obs_schema: pa.Schema, with_values: bool) -> pa.Schema:
    fields = [pa.field("cell_id", pa.string()), pa.field("genes", pa.list_(pa.int32()))]
    if with_values:
        fields.append(pa.field("values", pa.list_(pa.float32())))
    fields.append(pa.field("split", pa.dictionary(pa.int8(), pa.string())))
    return pa.schema(fields + list(obs_schema))


def _list_array(flat: np.ndarray, offsets: np.ndarray, typ) -> pa.Array:
    off = pa.array((offsets - offsets[0]).astype(np.int32), type=pa.int32())
    return pa.ListArray.from_arrays(off, pa.array(flat, type=typ))


def cell_columns(schema: pa.Schema, ids, split_codes, obs: pd.DataFrame) -> pa.Table:
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


class ShardWriter:
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
            write_batch_size=1 << 16,
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
class ConvertJob:
    """Everything a worker needs to write one shard (picklable for process pools)."""

    source: object  # a c2s.sources.MatrixSource (or one of its kinds)
    shard: int
    start: int
    stop: int
    path: str
    chunk_size: int
    seed: int
    n_genes: int | None  # genes per sentence (None: every expressed gene)
    normalize: bool
    with_values: bool
    obs_keys: list[str]
    split_codes: np.ndarray
    schema: pa.Schema
    n_vars: int  # the source's genes (matrix columns)
    numba_threads: int | None = None


@dataclass
class ShardResult:
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


def run_job(job: ConvertJob, on_chunk=None) -> ShardResult:
    from c2s.pp import log10_normalize
    from c2s.sentences import rank_csr

    if job.numba_threads:
        import numba

        numba.set_num_threads(job.numba_threads)
    src = job.source
    cells = cell_columns(
        job.schema,
        src.obs.index[job.start : job.stop].astype(str),
        job.split_codes,
        src.obs.iloc[job.start : job.stop][job.obs_keys],
    )
    writer = ShardWriter(Path(job.path), job.schema, job.with_values, cells)
    n_expressed = np.zeros(job.n_vars, dtype=np.int64)
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
                            (data, indices, indptr - indptr[0]), shape=(b - a, job.n_vars)
                        )
                    )
                    indptr, indices, data = X.indptr, X.indices, X.data
                r = rank_csr(
                    indptr,
                    indices,
                    data,
                    job.n_vars,
                    seed=job.seed,
                    n_genes=job.n_genes,
                    row_offset=a,
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
    return ShardResult(job.shard, job.stop - job.start, n_expressed, hist)


def _ignore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _init_worker(parent: int) -> None:
    """A worker process leaves Ctrl-C to its parent, and ends with it: a parent killed with
    SIGKILL has no time to stop its workers, which would go on writing into a temporary
    directory that nobody removes (Linux ends them at once; elsewhere a watch, each second)."""
    import os
    import signal
    import sys
    import threading
    import time

    _ignore_sigint()
    if sys.platform.startswith("linux"):
        import contextlib
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    def watch():
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, name="c2s-parent-watch", daemon=True).start()


def _stop_workers(pool) -> None:
    """End a process pool's workers now and wait for them (their work is thrown away, and
    none may write into the temporary directory after it is removed)."""
    import contextlib

    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        with contextlib.suppress(ValueError, OSError):  # closed or gone already
            p.kill()
    for p in procs:
        with contextlib.suppress(ValueError):
            p.join(10)


def _start_ignoring_ctrl_c(pool, workers: int) -> None:
    """Start every worker now, with Ctrl-C ignored from birth, so that only the parent
    reports an interrupt (one message, no traceback per worker).

    The pool starts workers on demand, and a Ctrl-C reaching a worker while it boots (before
    its initializer) prints a traceback; a process started while SIGINT is ignored ignores it
    too, and Python then installs no handler of its own. Back-to-back submissions start one
    worker each (none is idle yet). Outside the main thread signals cannot be changed; the
    initializer alone protects the workers there.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        started = [pool.submit(_ignore_sigint) for _ in range(workers)]
    finally:
        signal.signal(signal.SIGINT, previous)
    for f in started:
        f.result()


def _executor(workers: int, use_processes: bool) -> Executor | None:
    if workers <= 1:
        return None
    if use_processes:
        import multiprocessing as mp
        import os
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the parent's OpenMP threads (numba) do not survive a fork.
        pool = ProcessPoolExecutor(
            workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(os.getpid(),),
        )
        _start_ignoring_ctrl_c(pool, workers)
        return pool
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(workers)


def run_jobs(jobs, workers, use_processes, progress_bar, n_cells) -> list[ShardResult]:
    bar = progress(total=n_cells, desc="ranking cells", unit="cells", enabled=progress_bar)
    results = []
    pool = _executor(min(workers, len(jobs)), use_processes)
    try:
        if pool is None:
            for job in jobs:
                results.append(run_job(job, on_chunk=bar.update))
        else:
            from concurrent.futures import as_completed

            futures = [pool.submit(run_job, j) for j in jobs]
            for fut in as_completed(futures):
                res = fut.result()
                results.append(res)
                bar.update(res.n_cells)
    except BaseException:
        if pool is not None and use_processes:
            _stop_workers(pool)
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        bar.close()
    return sorted(results, key=lambda r: r.shard)
