"""What closes the gap to logistic regression: quickstart-recipe variations on PBMC.

Trains one from-scratch model on the quickstart dataset's training split (run
`make quickstart` first, or pass --dataset) and prints one JSON line: the recipe, training
seconds, and held-out accuracy by label scoring on the validation and test cells (140 cells
together; the baselines' numbers are printed with --baselines).

    .venv/bin/python benchmarks/bench_recipes.py NAME --preset small --epochs 10 --n-genes 50 \\
        --tasks cell_type_prediction:4 [cell_type_generation:0.1] [--lr 2e-3] [--hidden 256]
    .venv/bin/python benchmarks/bench_recipes.py --baselines
"""

from __future__ import annotations

import argparse
import json
import shutil
import time

import numpy as np


def accuracy_on(ds, predict_fn) -> dict:
    out = {}
    obs = ds.obs(["cell_type"])
    for split in ("validation", "test"):
        pred = predict_fn(split)
        truth = obs.loc[pred.index, "cell_type"].astype(str).to_numpy()
        out[split] = float(np.mean(pred.astype(str).to_numpy() == truth))
    n = {k: len(v) for k, v in ds.split_indices().items()}
    out["both"] = (out["validation"] * n["validation"] + out["test"] * n["test"]) / (
        n["validation"] + n["test"]
    )
    return out


def main() -> None:
    import pandas as pd

    import c2s
    from c2s.baselines import expression, knn_pca, logistic_regression
    from c2s.model import C2SModel
    from c2s.train import fine_tune

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", nargs="?", default="run")
    p.add_argument("--dataset", default="c2s-quickstart/dataset")
    p.add_argument("--preset", default="small")
    p.add_argument("--hidden", type=int, default=None, help="override hidden_size")
    p.add_argument("--epochs", type=float, default=8.0)
    p.add_argument("--n-genes", type=int, default=50)
    p.add_argument("--tasks", nargs="+", default=["cell_type_prediction:4"])
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--baselines", action="store_true", help="only the baselines' accuracy")
    args = p.parse_args()
    ds = c2s.io.read_dataset(args.dataset)
    if args.baselines:
        Xtr, otr = expression(ds, split="train")
        ytr = otr["cell_type"].astype(str)
        for name, fn in (("logistic_regression", logistic_regression), ("knn_pca", knn_pca)):

            def run(split, fn=fn):
                X, o = expression(ds, split=split)
                return pd.Series(fn(Xtr, ytr, X), index=o.index)

            print(json.dumps({"name": name, **accuracy_on(ds, run)}))
        return
    out = f"bench-out/recipes/{args.name}"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    overrides = {"hidden_size": args.hidden} if args.hidden else {}
    m = C2SModel.from_scratch(ds, preset=args.preset, max_length=1024, seed=0, **overrides)
    r = fine_tune(
        m, ds, output_dir=out, tasks=args.tasks, epochs=args.epochs, seed=0, n_genes=args.n_genes,
        batch_size=16, learning_rate=args.lr, warmup=0.05, logging_steps=50,
        max_eval_examples=200,
    )  # fmt: skip
    train_s = time.perf_counter() - t
    m = C2SModel.from_pretrained(out)
    acc = accuracy_on(
        ds,
        lambda split: c2s.tl.predict(ds, m, split=split, inplace=False, progress_bar=False)[
            "c2s_prediction"
        ],
    )
    rec = {k: v for k, v in vars(args).items() if k not in ("baselines", "dataset")}
    print(json.dumps({**rec, "train_s": round(train_s, 1), "steps": r.steps,
                      "parameters": r.total_parameters, **acc}), flush=True)  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
