"""Conversion on a Dask cluster: each shard's row range is ranked and written by a Dask
worker (the same job as on one machine, so the output is the same whatever the number of
workers); the driver writes the metadata and vocabulary and renames the directory at the
end. Workers must see the output's file system (a shared disk, as on an HPC cluster)."""

from __future__ import annotations

from c2s._errors import C2SError
from c2s._logging import progress
from c2s.io._shards import run_job

RETRIES = 2  # a task whose worker failed or died runs again this many times


def reopenable(src) -> bool:
    """Whether workers elsewhere can open the source themselves (a file path or a SOMA URI;
    for several inputs, every one)."""
    parts = getattr(src, "parts", None)
    if parts:
        return all(reopenable(p) for p in parts)
    return src.path is not None or bool(getattr(src, "reopenable", False))


def run_on_dask(jobs, client, *, progress_bar, n_cells: int, retries: int = RETRIES) -> list:
    """Run the shard jobs on ``client``'s cluster; their results, by shard. A failed task
    is retried; if it keeps failing, the others are cancelled and the error raised (the
    caller's temporary directory is then removed)."""
    from distributed import as_completed
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    futures = [client.submit(run_job, j, retries=retries, pure=False) for j in jobs]
    results = []
    bar = progress(total=n_cells, desc="ranking cells (dask)", unit="cells", enabled=progress_bar)
    try:
        for fut in as_completed(futures):
            res = fut.result()
            results.append(res)
            bar.update(res.n_cells)
    except (KilledWorker, FutureCancelledError) as e:
        raise C2SError(
            f"Dask workers died while converting ({e}); nothing was written. A common cause is "
            "memory: lower --chunk-size (cells read at a time per task) or give workers more."
        ) from e
    finally:
        client.cancel([f for f in futures if not f.done()])
        bar.close()
    return sorted(results, key=lambda r: r.shard)


def dask_client(address: str):
    """A client of the scheduler at ``address`` (``tcp://host:8786``)."""
    try:
        from distributed import Client
    except ImportError as e:
        raise ImportError("--scheduler needs Dask: pip install 'c2s[dask]'") from e
    try:
        return Client(address, timeout="30s")
    except (OSError, TimeoutError) as e:
        raise C2SError(f"Cannot reach the Dask scheduler at {address!r}: {e}") from e
