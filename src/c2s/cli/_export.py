"""c2s export --format reference DATASET OUT"""

from __future__ import annotations

from c2s.cli import _flags as flags
from c2s.cli._common import emit


def register(sub) -> None:
    from c2s.io import export_reference

    flags.add_command(
        sub, "export", verb=export_reference, run=run, help="write a c2s dataset in another layout"
    )


def run(args) -> int:
    from c2s.io import export_reference, read_dataset

    ds = read_dataset(args.dataset)
    out = export_reference(ds, args.out, **flags.verb_kwargs(args))
    emit({"out": str(out), "n_cells": ds.n_cells}, args.json, f"wrote {ds.n_cells} cells to {out}")
    return 0
