"""c2s import-reference ARROW_DIR OUT_DIR"""

from __future__ import annotations

from c2s.cli._common import add_json, emit


def register(sub) -> None:
    p = sub.add_parser("import-reference", help="import a cell2sentence-package Arrow dataset")
    p.add_argument("arrow_dir", help="directory saved by the reference package (save_to_disk)")
    p.add_argument("out_dir", help="c2s dataset directory to create")
    p.add_argument("--vocabulary", help="JSON gene -> count mapping giving the vocabulary order")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="0.8,0.1,0.1", help="train,validation,test fractions")
    p.add_argument("--overwrite", action="store_true")
    add_json(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from c2s.io import import_reference

    ds = import_reference(
        args.arrow_dir,
        args.out_dir,
        vocabulary=args.vocabulary,
        seed=args.seed,
        split=args.split,
        overwrite=args.overwrite,
    )
    emit(
        ds.info(),
        args.json,
        f"imported {ds.n_cells} cells x {ds.meta['n_genes']} genes into {ds.path}",
    )
    return 0
