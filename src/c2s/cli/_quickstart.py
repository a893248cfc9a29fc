"""c2s quickstart --out DIR"""

from __future__ import annotations

from c2s.cli._common import add_json, emit


def register(sub) -> None:
    p = sub.add_parser(
        "quickstart",
        help="run the end-to-end demo on scanpy's bundled PBMC data",
        description="Convert the bundled PBMC data, fit and evaluate the inverse transform, "
        "train a small model from scratch, and write a report (metrics.json, PNG plots, "
        "report.md). Nothing is downloaded.",
    )
    p.add_argument(
        "--out", default="c2s-quickstart", help="report directory (default c2s-quickstart)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--preset", default="small", choices=["tiny", "small", "base"], help="model size"
    )
    p.add_argument(
        "--epochs",
        type=float,
        help="training epochs of both models (default: their recipes; 0 skips)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing report directory")
    add_json(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from c2s.evaluation import headline_table
    from c2s.quickstart import run_quickstart

    m = run_quickstart(
        args.out,
        overwrite=args.overwrite,
        seed=args.seed,
        verbose=not args.json,
        preset=args.preset,
        epochs=args.epochs,
    )
    inv = m["inverse"]
    best = inv["heldout"][inv["selected"]]
    human = (
        f"quickstart done in {m['timing_s']['total']:.1f} s\n"
        f"inverse transform: {inv['selected']} held-out R^2 {best['r2']:.3f} "
        f"(linear {inv['heldout']['linear']['r2']:.3f})\n"
        + (
            f"model: {m['training']['steps']} steps, validation loss "
            f"{m['training']['eval_loss']:.3f}, saved in {args.out}/model\n"
            if "training" in m
            else ""
        )
        + (f"\n{headline_table(m)}\n" if "annotation" in m else "")
        + f"report: {args.out}/report.md"
    )
    emit(m, args.json, human)
    return 0
