"""Perturbation response on synthetic data with planted effects: a tiny C2S model next to the
baselines, per group of held-out pairs.

    .venv/bin/python benchmarks/bench_perturbation.py [--epochs 30] [--seeds 0 1 2]
    .venv/bin/python benchmarks/bench_perturbation.py --throughput

The data (``c2s.datasets.synthetic_perturbation``: 2 contexts, 8 single perturbations, an
additive and a non-additive combination, 100 cells per condition and context, 300 genes) is
converted with PERT3 and PERT4+PERT5 held out (all their cells in test); a tiny GPT-NeoX is
trained from scratch on ``perturbation_prediction`` (50 genes, controls matched by context)
and ``c2s evaluate`` scores it (5 predicted cells per control). The table averages the
per-pair rows of ``perturbation.csv`` over the pairs of seen perturbations, of the unseen
single and of the unseen combination, per seed; then mean +- sd over the seeds.
Results: bench-out/perturbation/.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLS = ["pearson_top20_de", "pearson_all", "up_overlap", "down_overlap", "mmd", "energy_distance"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=float, default=30.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="data and model seeds")
    ap.add_argument("--n-samples", type=int, default=5, help="predicted cells per control")
    ap.add_argument("--split", default="test", help="'validation' to choose a recipe")
    ap.add_argument("--out", default=str(ROOT / "bench-out" / "perturbation"))
    ap.add_argument(
        "--throughput",
        action="store_true",
        help="instead: predicted cells/s of screen next to generate's, on one model in one run",
    )
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if args.throughput:
        return throughput(Path(args.out), args.seeds[0])
    import pandas as pd

    out = Path(args.out)
    runs = [one_seed(out / f"seed{s}", s, args) for s in args.seeds]
    table = pd.concat([t.assign(seed=s) for s, (t, _) in zip(args.seeds, runs, strict=True)])
    held = ["PERT3", "PERT4+PERT5"]
    table["group"] = table["perturbation"].map(lambda p: p if p in held else "seen")
    per_seed = table.groupby(["group", "method", "seed"])[COLS].mean()
    mean, sd = (
        per_seed.groupby(["group", "method"]).mean(),
        per_seed.groupby(["group", "method"]).std(),
    )
    record = {
        "command": "benchmarks/bench_perturbation.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "split": args.split,
        "train": [info for _, info in runs],
        "mean": {"|".join(k): v for k, v in mean.round(3).to_dict("index").items()},
        "sd_over_seeds": {"|".join(k): v for k, v in sd.round(3).to_dict("index").items()},
    }
    (out / "bench.json").write_text(json.dumps(record, indent=1))
    print(mean.round(3).astype(str).add(" +- ").add(sd.round(3).astype(str)).to_string())
    return 0


def one_seed(out: Path, seed: int, args):
    """Convert (PERT3 and PERT4+PERT5 held out), train, evaluate; the per-pair table."""
    import pandas as pd

    import c2s
    from c2s.model import C2SModel
    from c2s.train import fine_tune

    adata = c2s.datasets.synthetic_perturbation(n_cells=100, n_genes=300, seed=seed)
    held = ["PERT3", "PERT4+PERT5"]
    ds = c2s.io.convert(adata, out / "ds", normalize=True, split_by="perturbation",
                        holdout=held, seed=seed, overwrite=True)  # fmt: skip
    ds.update_meta(inverse=c2s.inverse.fit_inverse(ds.sentences(split="train")).to_dict())
    m = C2SModel.from_scratch(ds, max_length=256, device="cpu", preset="tiny", seed=seed)
    t = time.perf_counter()
    r = fine_tune(
        m, ds, output_dir=out / "model", overwrite=True, tasks=["perturbation_prediction"],
        n_genes=50, context=["context"], epochs=args.epochs, batch_size=16, learning_rate=2e-3,
        eval_split=None, probe=False, calibrate=False, seed=seed,
    )  # fmt: skip
    info = {"seed": seed, "steps": r.steps, "train_s": time.perf_counter() - t}
    res = c2s.evaluate(
        out / "model", ds, out / "ev", split=args.split, parts=["perturbation"],
        overwrite=True, n_samples=args.n_samples, seed=seed,
    )  # fmt: skip
    info["evaluate_s"] = res["timing_s"]
    return pd.read_csv(out / "ev" / "perturbation.csv"), info


def throughput(out: Path, seed: int) -> int:
    """Predicted cells/s of ``c2s.tl.screen`` (PERT1-PERT8 from the 200 controls of both
    contexts, 5 samples each: 8,000 cells) and of ``c2s.tl.generate`` (8,000 cells of the two
    contexts), on one model that learned both tasks, loaded once, 50 genes per cell, batch 64,
    whole calls (reading the controls and the inverse transform included)."""
    import c2s
    from c2s.model import C2SModel
    from c2s.train import fine_tune

    adata = c2s.datasets.synthetic_perturbation(n_cells=100, n_genes=300, seed=seed)
    adata.obs["cell_type"] = adata.obs["context"]  # generation is conditioned on the context
    ds = c2s.io.convert(adata, out / "tp_ds", normalize=True, seed=seed, overwrite=True)
    inv = c2s.inverse.fit_inverse(ds.sentences(split="train"))
    m = C2SModel.from_scratch(ds, max_length=256, device="cpu", preset="tiny", seed=seed)
    tasks = ["perturbation_prediction", "cell_type_generation"]
    fine_tune(
        m, ds, output_dir=out / "tp_model", overwrite=True, tasks=tasks, n_genes=50,
        context=["context"], epochs=1, batch_size=16, learning_rate=2e-3, eval_split=None,
        probe=False, calibrate=False, seed=seed,
    )  # fmt: skip
    m = C2SModel.from_pretrained(out / "tp_model")
    perts = [f"PERT{i}" for i in range(1, 9)]
    controls = c2s.io.read_dataset(out / "tp_ds")
    t = time.perf_counter()
    tab = c2s.tl.screen(
        controls, m, perts, context_key="context", program=c2s.datasets.MHC_I, n_samples=5,
        inverse=inv, batch_size=64, seed=seed,
    )  # fmt: skip
    screen_s = time.perf_counter() - t
    n_screen = tab.attrs["c2s"]["n_predicted_cells"]
    t = time.perf_counter()
    gen = c2s.tl.generate(
        m, {"ifn": n_screen // 2, "no_ifn": n_screen - n_screen // 2}, inverse=inv,
        batch_size=64, seed=seed,
    )  # fmt: skip
    gen_s = time.perf_counter() - t
    rec = {
        "command": "benchmarks/bench_perturbation.py --throughput",
        "date": time.strftime("%Y-%m-%d"),
        "screen": {"cells": n_screen, "seconds": screen_s, "cells_per_s": n_screen / screen_s},
        "generate": {"cells": gen.n_obs, "seconds": gen_s, "cells_per_s": gen.n_obs / gen_s},
    }
    (out / "throughput.json").write_text(json.dumps(rec, indent=1))
    print(json.dumps(rec, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
