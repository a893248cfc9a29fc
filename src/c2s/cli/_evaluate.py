"""c2s evaluate MODEL DATASET --out DIR"""

from __future__ import annotations

from c2s.cli._common import add_json, emit


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model against baselines on a dataset's held-out cells",
        description="Run the tasks the model was trained for on the dataset's held-out split, "
        "next to baselines fit on its training split (logistic regression and k-NN for "
        "annotation; class-mean and resampled real cells for generation), and write "
        "metrics.json, report.md and PNG plots to --out.",
    )
    p.add_argument("model", help="model directory or hub id")
    p.add_argument("dataset", help="c2s dataset directory (with a split)")
    p.add_argument("--out", required=True, help="report directory to create")
    p.add_argument("--split", default="test", help="split to evaluate on (default test)")
    p.add_argument(
        "--tasks",
        nargs="+",
        help="tasks to score (default: the model's c2s_config.json; needed for a released "
        "checkpoint, e.g. --tasks cell_type_prediction)",
    )
    p.add_argument("--n-genes", type=int, help="genes per cell sentence (default: the model's)")
    p.add_argument("--organism", help="organism for the prompts (default: the model's)")
    p.add_argument("--temperature", type=float, help="generation: sampling temperature")
    p.add_argument("--top-p", type=float, help="generation: nucleus sampling")
    p.add_argument(
        "--model-frechet",
        action="store_true",
        help="generation: also the Frechet distance in the model's embedding space",
    )
    p.add_argument(
        "--max-cells",
        type=int,
        default=10_000,
        help="held-out cells used at most: a seeded sample stratified by cell type (default "
        "10000; 0 for all)",
    )
    p.add_argument(
        "--max-train-cells",
        type=int,
        default=50_000,
        help="training cells the baselines and the embedding k-NN use at most (default 50000; "
        "0 for all)",
    )
    p.add_argument(
        "--n-samples",
        type=int,
        default=5,
        help="perturbation: predicted cells per held-out control and perturbation (default 5)",
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing report directory")
    add_json(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from c2s.evaluation import evaluate, headline_table

    res = evaluate(
        args.model,
        args.dataset,
        args.out,
        split=args.split,
        batch_size=args.batch_size,
        seed=args.seed,
        tasks=args.tasks,
        n_genes=args.n_genes,
        organism=args.organism,
        temperature=args.temperature,
        top_p=args.top_p,
        model_frechet=args.model_frechet,
        max_cells=args.max_cells or None,
        max_train_cells=args.max_train_cells or None,
        n_samples=args.n_samples,
        overwrite=args.overwrite,
        progress_bar=not args.json,
        verbose=not args.json,
    )
    emit(res, args.json, f"{headline_table(res)}\nreport: {args.out}/report.md")
    return 0
