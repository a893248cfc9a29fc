"""Training throughput: c2s ``fine_tune`` vs the reference ``CSModel.fine_tune``, side by side.

Both start from the same saved tiny GPT-NeoX model (built from the PBMC gene vocabulary) and
train one epoch on the same 700 PBMC cells (~560 training cells each) with the same batch
size, task and number of genes per sentence. Measured per run: seconds inside
``Trainer.train``, real (non-pad) tokens and padded positions of the training batches, and
the wall time of the whole fine-tuning call.

    .venv/bin/python benchmarks/bench_train.py [--tasks cell_type_prediction,cell_type_generation]
        [--top-k 1000,100] [--ref .venv-ref/bin/python]

Writes bench-out/train.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

OUT = Path("bench-out/train")


def prepare() -> tuple[Path, Path, Path]:
    import c2s
    from c2s.model import C2SModel

    OUT.mkdir(parents=True, exist_ok=True)
    h5ad, data, model = OUT / "pbmc.h5ad", OUT / "pbmc", OUT / "model"
    adata = c2s.datasets.pbmc68k_reduced()
    if not h5ad.exists():
        adata.write_h5ad(h5ad)
    if not data.exists():
        c2s.io.convert(adata, data, obs_keys=["cell_type", "organism"], seed=0)
    if not model.exists():
        C2SModel.from_scratch(data, preset="tiny", max_length=1024, device="cpu").save(model)
    return h5ad, data, model


def ours(data: Path, model: Path, task: str, k: int, batch: int, sampling: str) -> dict:
    from c2s.model import C2SModel
    from c2s.train import fine_tune

    m = C2SModel.from_pretrained(model, device="cpu")
    t = time.perf_counter()
    r = fine_tune(
        m,
        data,
        tasks=[task],
        n_genes=k,
        batch_size=batch,
        epochs=1,
        learning_rate=1e-4,
        eval_split=None,
        sampling=sampling,
        logging_steps=1000,
    )
    wall = time.perf_counter() - t
    return {
        "fine_tune_s": wall,
        "train_s": r.seconds,
        "real_tokens": r.tokens,
        "padded_fraction": r.padded_fraction,
        "tokens_per_s": r.tokens_per_second,
        "n_examples": r.n_train_examples,
    }


def reference(py: str, h5ad: Path, model: Path, task: str, k: int, batch: int) -> dict:
    work = OUT / f"ref-{task}-{k}"
    cmd = [py, "benchmarks/ref_train.py", str(h5ad), str(model), str(work), "--task", task,
           "--top-k", str(k), "--batch-size", str(batch)]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "WANDB_DISABLED": "true"}
    )
    if proc.returncode != 0:
        raise SystemExit(f"reference run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="cell_type_prediction,cell_type_generation")
    p.add_argument("--top-k", default="1000,100", help="genes per sentence (1000 = full length)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--ref", default=".venv-ref/bin/python", help="python of the reference venv")
    args = p.parse_args()
    os.environ.setdefault("C2S_NO_PROGRESS", "1")
    h5ad, data, model = prepare()
    rows = []
    for task in args.tasks.split(","):
        for k in map(int, args.top_k.split(",")):
            row = {"task": task, "top_k": k}
            row["ref"] = reference(args.ref, h5ad, model, task, k, args.batch_size)
            row["ours"] = ours(data, model, task, k, args.batch_size, "group_by_length")
            row["ours_random_order"] = ours(data, model, task, k, args.batch_size, "random")
            row["speedup_tokens_per_s"] = row["ours"]["tokens_per_s"] / row["ref"]["tokens_per_s"]
            row["speedup_fine_tune_wall"] = row["ref"]["fine_tune_s"] / row["ours"]["fine_tune_s"]
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "command": "benchmarks/bench_train.py " + " ".join(sys.argv[1:]),
        "batch_size": args.batch_size,
    }
    (OUT.parent / "train.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(
        "| task | genes | reference tok/s | pad | c2s tok/s | pad | c2s random order tok/s | pad | speedup | fine-tune wall ref / c2s (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        a, b, c = r["ref"], r["ours"], r["ours_random_order"]
        print(
            f"| {r['task']} | {r['top_k']} | {a['tokens_per_s']:,.0f} | {a['padded_fraction']:.1%} | "
            f"{b['tokens_per_s']:,.0f} | {b['padded_fraction']:.1%} | {c['tokens_per_s']:,.0f} | "
            f"{c['padded_fraction']:.1%} | **{r['speedup_tokens_per_s']:.2f}x** | "
            f"{a['fine_tune_s']:.1f} / {b['fine_tune_s']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
