"""Perturbation response on synthetic data with planted effects: a tiny C2S model next to the
baselines, per group of held-out pairs.

    .venv/bin/python benchmarks/bench_perturbation.py [--epochs 3] [--seed 0]

The data (``c2s.datasets.synthetic_perturbation``: 2 contexts, 8 single perturbations, an
additive and a non-additive combination, 100 cells per condition and context, 300 genes) is
converted with PERT3 and PERT4+PERT5 held out (all their cells in test); a tiny GPT-NeoX is
trained from scratch on ``perturbation_prediction`` (50 genes, controls matched by context)
and ``c2s evaluate`` scores it. The table averages the per-pair rows of ``perturbation.csv``
over the pairs of seen perturbations, of the unseen single and of the unseen combination.
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
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "bench-out" / "perturbation"))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import pandas as pd

    import c2s
    from c2s.model import C2SModel
    from c2s.train import fine_tune

    out = Path(args.out)
    adata = c2s.datasets.synthetic_perturbation(n_cells=100, n_genes=300, seed=args.seed)
    held = ["PERT3", "PERT4+PERT5"]
    ds = c2s.io.convert(adata, out / "ds", normalize=True, split_by="perturbation",
                        holdout=held, seed=args.seed, overwrite=True)  # fmt: skip
    ds.update_meta(inverse=c2s.inverse.fit_inverse(ds.sentences(split="train")).to_dict())
    m = C2SModel.from_scratch(ds, max_length=256, device="cpu", preset="tiny", seed=args.seed)
    t = time.perf_counter()
    r = fine_tune(
        m, ds, output_dir=out / "model", overwrite=True, tasks=["perturbation_prediction"],
        n_genes=50, context=["context"], epochs=args.epochs, batch_size=16, learning_rate=2e-3,
        eval_split=None, probe=False, calibrate=False, seed=args.seed,
    )  # fmt: skip
    train_s = time.perf_counter() - t
    res = c2s.evaluate(out / "model", ds, out / "ev", parts=["perturbation"], overwrite=True)
    table = pd.read_csv(out / "ev" / "perturbation.csv")
    groups = {
        "seen perturbations": table["seen_in_training"],
        "unseen single (PERT3)": table["perturbation"] == "PERT3",
        "unseen combination (PERT4+PERT5, non-additive)": table["perturbation"] == "PERT4+PERT5",
    }
    summary = {
        name: table[sel].groupby("method")[COLS].mean().round(3).to_dict("index")
        for name, sel in groups.items()
    }
    record = {
        "command": "benchmarks/bench_perturbation.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "train": {"steps": r.steps, "seconds": train_s, "loss": r.train_loss},
        "evaluate_s": res["timing_s"],
        "groups": summary,
    }
    (out / "bench.json").write_text(json.dumps(record, indent=1))
    for name, rows in summary.items():
        print(f"\n{name}")
        print(pd.DataFrame(rows).T.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
