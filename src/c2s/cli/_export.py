"""c2s export --format reference DATASET OUT"""

from __future__ import annotations

from c2s.cli._common import add_json, emit


def register(sub) -> None:
    p = sub.add_parser("export", help="write a c2s dataset in another layout")
    p.add_argument(
        "--format",
        default="reference",
        choices=["reference"],
        help="reference: the cell2sentence package's Arrow layout",
    )
    p.add_argument("dataset")
    p.add_argument("out")
    p.add_argument("--obs", nargs="+", metavar="COL", help="label columns to include")
    p.add_argument("--overwrite", action="store_true")
    add_json(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from c2s.io import export_reference, read_dataset

    ds = read_dataset(args.dataset)
    out = export_reference(ds, args.out, obs_keys=args.obs, overwrite=args.overwrite)
    emit({"out": str(out), "n_cells": ds.n_cells}, args.json, f"wrote {ds.n_cells} cells to {out}")
    return 0
