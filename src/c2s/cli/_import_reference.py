"""c2s import-reference ARROW_DIR OUT_DIR"""

from __future__ import annotations

from c2s.cli import _flags as flags
from c2s.cli._common import emit


def register(sub) -> None:
    from c2s.io import import_reference

    flags.add_command(
        sub,
        "import-reference",
        verb=import_reference,
        run=run,
        help="import a cell2sentence-package Arrow dataset",
    )


def run(args) -> int:
    from c2s.io import import_reference

    ds = import_reference(args.arrow_dir, args.out_dir, **flags.verb_kwargs(args))
    emit(
        ds.info(),
        args.json,
        f"imported {ds.n_cells} cells x {ds.meta['n_genes']} genes into {ds.path}",
    )
    return 0
