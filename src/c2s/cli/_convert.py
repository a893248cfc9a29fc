"""c2s convert INPUT OUT_DIR (an .h5ad file, or a TileDB-SOMA experiment URI)"""

from __future__ import annotations

import re
import time

from c2s.cli import _flags as flags
from c2s.cli._common import emit


def register(sub) -> None:
    from c2s.io import convert

    flags.add_command(
        sub,
        "convert",
        verb=convert,
        run=run,
        help="rank an .h5ad or a SOMA experiment into a c2s dataset (Parquet shards)",
        description="Rank every cell of an .h5ad file, or the cells of a TileDB-SOMA "
        "experiment (the CELLxGENE Census format) a query selects, into cell sentences and "
        "write a c2s dataset directory. The input is streamed in row chunks, so it may be "
        "larger than memory.",
    )


def _check_options(args) -> None:
    """Options that would be ignored or misread, refused (or warned about) before any work."""
    import warnings

    from c2s._errors import C2SError

    if len(args.input) == 1:
        if args.source_key is not None:
            raise C2SError(
                "--source-key names the obs column saying which input each cell came from; "
                "with one input no such column is written. Drop it, or give several inputs."
            )
        if args.genes is not None:
            warnings.warn(
                f"--genes {args.genes} aligns the genes of several inputs; with one input it "
                "does nothing.",
                stacklevel=2,
            )
    if args.scheduler is not None and not _SCHEDULER.fullmatch(args.scheduler):
        raise C2SError(
            f"--scheduler {args.scheduler!r} is not a Dask scheduler address; give "
            "[SCHEME://]HOST:PORT with SCHEME one of tcp, tls, ws, wss, ucx (e.g. "
            "tcp://10.0.0.5:8786)."
        )


# what distributed.Client takes: [scheme://]host:port, the host a name, IPv4 or [IPv6]
_SCHEDULER = re.compile(
    r"((tcp|tls|ws|wss|ucx)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)"
    r":([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
)


def run(args) -> int:
    _check_options(args)
    t0 = time.perf_counter()
    client = None
    if args.scheduler:
        from c2s.io import dask_client

        client = dask_client(args.scheduler)
    try:
        ds = _convert(args, client)
    finally:
        if client is not None:
            client.close()
    secs = time.perf_counter() - t0
    info = ds.info() | {"seconds": secs, "cells_per_s": ds.n_cells / secs if secs else None}
    emit(
        info,
        args.json,
        f"wrote {ds.n_cells} cells x {ds.meta['n_genes']} genes to {ds.path} "
        f"in {secs:.1f} s ({info['cells_per_s']:.0f} cells/s)",
    )
    return 0


def _convert(args, client):
    from c2s.io import convert

    return convert(args.input, args.out_dir, **flags.verb_kwargs(args, client=client))
