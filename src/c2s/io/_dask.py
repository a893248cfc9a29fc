"""Conversion on a Dask cluster: each shard's row range is ranked and written by a Dask
worker (the same job as on one machine, so the output is the same whatever the number of
workers); the driver writes the metadata and vocabulary and renames the directory at the
end. Workers must see the output's file system (a shared disk, as on an HPC cluster)."""

from __future__ import annotations

import time

from c2s._errors import C2SError
from c2s._logging import progress
from c2s.io._shards import run_job

RETRIES = 2  # a task whose worker failed or died runs again this many times
# How long a cluster may have no worker at all before the conversion gives up (the Dask
# setting ``c2s.no-workers-timeout``, e.g. DASK_C2S__NO_WORKERS_TIMEOUT=30m): long enough
# for a nanny or a batch system to start new workers, short of waiting forever.
NO_WORKERS_TIMEOUT = "300s"
_POLL = 1.0  # seconds between looks at the cluster while no task finishes


def no_workers_timeout() -> float:
    """Seconds without any worker after which :func:`run_on_dask` gives up."""
    import dask
    from dask.utils import parse_timedelta

    value = dask.config.get("c2s.no-workers-timeout", NO_WORKERS_TIMEOUT)
    try:
        return float(parse_timedelta(value, default="s"))
    except (TypeError, ValueError, KeyError) as e:
        raise C2SError(
            f"The Dask setting c2s.no-workers-timeout must be a duration such as '300s' or "
            f"'30m', not {value!r}."
        ) from e


def run_on_dask(
    jobs, client, *, progress_bar, n_cells: int, retries: int = RETRIES, timeout=None
) -> list:
    """Run the shard jobs on ``client``'s cluster; their results, by shard. A failed task
    is retried; if it keeps failing, or the cluster has no worker for ``timeout`` seconds
    (default :func:`no_workers_timeout`), the others are cancelled and an error raised (the
    caller's temporary directory is then removed)."""
    from distributed import TimeoutError as WaitedEnough
    from distributed import wait
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    timeout = no_workers_timeout() if timeout is None else float(timeout)
    futures = [client.submit(run_job, j, retries=retries, pure=False) for j in jobs]
    results = []
    bar = progress(total=n_cells, desc="ranking cells (dask)", unit="cells", enabled=progress_bar)
    pending, alone_since = set(futures), None
    try:
        while pending:
            try:
                done, pending = wait(pending, timeout=_POLL, return_when="FIRST_COMPLETED")
            except (TimeoutError, WaitedEnough):  # the same class from Python 3.11 on
                done = set()
            for fut in done:
                res = fut.result()
                results.append(res)
                bar.update(res.n_cells)
            if done or client.nthreads():
                alone_since = None
            elif alone_since is None:
                alone_since = time.monotonic()
            elif time.monotonic() - alone_since > timeout:
                raise C2SError(
                    f"The Dask cluster has had no workers for {timeout:g} s (they died or left, "
                    "and none took their place), so the conversion cannot go on; nothing was "
                    "written. Start workers and run it again; the Dask setting "
                    "c2s.no-workers-timeout (DASK_C2S__NO_WORKERS_TIMEOUT) sets how long to "
                    "wait for them."
                )
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
