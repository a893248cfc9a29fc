"""c2s convert INPUT OUT_DIR (an .h5ad file, or a TileDB-SOMA experiment URI)"""

from __future__ import annotations

import re
import time

from c2s.cli._common import add_json, emit


def register(sub) -> None:
    p = sub.add_parser(
        "convert",
        help="rank an .h5ad or a SOMA experiment into a c2s dataset (Parquet shards)",
        description="Rank every cell of an .h5ad file, or the cells of a TileDB-SOMA "
        "experiment (the CELLxGENE Census format) a query selects, into cell sentences and "
        "write a c2s dataset directory. The input is streamed in row chunks, so it may be "
        "larger than memory.",
    )
    p.add_argument(
        "input",
        nargs="+",
        help="input .h5ad file(s) (several make one dataset), or a SOMA experiment directory / URI",
    )
    p.add_argument("out_dir", help="dataset directory to create")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--layer", help="rank adata.layers[LAYER] instead of adata.X")
    src.add_argument("--raw", action="store_true", help="rank adata.raw.X instead of adata.X")
    p.add_argument(
        "--var-names",
        metavar="COLUMN",
        help="var column holding gene symbols (SOMA default: feature_name where it exists)",
    )
    many = p.add_argument_group("several input files")
    # no defaults here: given with one input, they are said to do nothing
    many.add_argument(
        "--genes",
        choices=["same", "union", "intersection"],
        help="genes aligned by name: same (default; differing sets are refused), union (a gene "
        "a file lacks is not expressed there) or intersection",
    )
    many.add_argument(
        "--source-key", help="obs column naming each cell's file (default source_file)"
    )
    soma = p.add_argument_group("TileDB-SOMA input")
    soma.add_argument("--measurement", default="RNA", help="measurement to read (default RNA)")
    soma.add_argument(
        "--x-name",
        help="X layer of the measurement (default: raw where it exists, else the only one)",
    )
    soma.add_argument(
        "--obs-filter",
        metavar="EXPR",
        help="cells to convert, e.g. \"tissue_general == 'lung' and is_primary_data == True\"",
    )
    soma.add_argument("--var-filter", metavar="EXPR", help="genes to convert (a var value filter)")
    p.add_argument("--obs", nargs="+", metavar="COL", help="obs columns to carry (default: all)")
    p.add_argument("--top-k", type=int, metavar="K", help="keep only the top K genes per cell")
    p.add_argument("--seed", type=int, default=0, help="seed for ties and the split (default 0)")
    p.add_argument(
        "--normalize", action="store_true", help="input is raw counts: store log10(1 + cp10k)"
    )
    p.add_argument("--no-values", action="store_true", help="store gene order only, no values")
    p.add_argument("--split", default="0.8,0.1,0.1", help="train,validation,test fractions")
    p.add_argument(
        "--stratify", metavar="COL", help="split each label of this obs column separately"
    )
    p.add_argument(
        "--split-by",
        metavar="COL",
        help="hold out whole values of this obs column (e.g. perturbation): each value to one "
        "split, or with --holdout the named ones to test",
    )
    p.add_argument(
        "--holdout",
        nargs="+",
        metavar="VALUE",
        help="values of --split-by whose cells all go to test (the rest split by --split)",
    )
    p.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="cells read at a time per worker (bounds memory; default 2048 / workers)",
    )
    p.add_argument("--shard-size", type=int, default=65536, help="cells per Parquet shard")
    p.add_argument("--workers", type=int, default=1, help="shards written in parallel")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the shards on a Dask cluster (tcp://host:8786); workers must see the input "
        "and the output's file system",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT_DIR")
    add_json(p)
    p.set_defaults(run=run)


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

    return convert(
        args.input,
        args.out_dir,
        genes=args.genes or "same",
        source_key="source_file" if args.source_key is None else args.source_key,
        layer=args.layer,
        use_raw=args.raw,
        var_names=args.var_names,
        obs_keys=args.obs,
        top_k=args.top_k,
        seed=args.seed,
        normalize=args.normalize,
        with_values=not args.no_values,
        split=args.split,
        stratify=args.stratify,
        split_by=args.split_by,
        holdout=args.holdout,
        chunk_size=args.chunk_size,
        shard_size=args.shard_size,
        workers=args.workers,
        overwrite=args.overwrite,
        measurement=args.measurement,
        x_name=args.x_name,
        obs_value_filter=args.obs_filter,
        var_value_filter=args.var_filter,
        client=client,
    )
