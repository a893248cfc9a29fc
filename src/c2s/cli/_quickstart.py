"""c2s quickstart --out DIR"""

from __future__ import annotations

from c2s.cli import _flags as flags
from c2s.cli._common import emit


def register(sub) -> None:
    from c2s.quickstart import run_quickstart

    flags.add_command(
        sub,
        "quickstart",
        verb=run_quickstart,
        run=run,
        help="run the end-to-end demo on scanpy's bundled PBMC data",
        description="Convert the bundled PBMC data, fit and evaluate the inverse transform, "
        "train a small model from scratch, and write a report (metrics.json, PNG plots, "
        "report.md). Nothing is downloaded.",
    )


def run(args) -> int:
    from c2s.evaluation import headline_table
    from c2s.quickstart import run_quickstart

    m = run_quickstart(args.out, **flags.verb_kwargs(args, verbose=not args.json))
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
