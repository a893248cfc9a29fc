"""c2s evaluate MODEL DATASET --out DIR"""

from __future__ import annotations

from c2s.cli import _flags as flags
from c2s.cli._common import emit


def register(sub) -> None:
    from c2s.evaluation import evaluate

    flags.add_command(
        sub,
        "evaluate",
        verb=evaluate,
        run=run,
        help="score a model against baselines on a dataset's held-out cells",
        description="Run the tasks the model was trained for on the dataset's held-out split, "
        "next to baselines fit on its training split (logistic regression and k-NN for "
        "annotation; class-mean and resampled real cells for generation), and write "
        "metrics.json, report.md and PNG plots to --out.",
    )


def run(args) -> int:
    from c2s.evaluation import evaluate, headline_table

    quiet = {"progress_bar": not args.json, "verbose": not args.json}
    res = evaluate(args.model, args.dataset, args.out, **flags.verb_kwargs(args, **quiet))
    emit(res, args.json, f"{headline_table(res)}\nreport: {args.out}/report.md")
    return 0
