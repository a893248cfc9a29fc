"""Training data at scale: ``c2s train`` on a large synthetic dataset, whole process, with its
peak RSS (the process tree, sampled every 50 ms) and the time from launch to the first
training step (the first ``step 1:`` log line of ``c2s -v train``).

    .venv/bin/python benchmarks/bench_scale.py --cells 250000          # ~10 min on 2 cores
    .venv/bin/python benchmarks/bench_scale.py --cells 1000000
    .venv/bin/python benchmarks/bench_scale.py --cells 250000 --evaluate   # + c2s evaluate

The data (synthetic counts, 2,000 genes, ~400 expressed per cell, 8 cell types) is written
once to bench-out/scale/cells_N.h5ad and converted once to bench-out/scale/ds_N (reused when
present); the training run is a tiny GPT-NeoX on cell-type prediction with the top 200 genes
for 20 steps, without validation. Results go to bench-out/scale/train_N.json. ``--evaluate``
then runs ``c2s evaluate`` of that model on the dataset's test split (its default sample of
at most 10,000 held-out and 50,000 training cells), with its peak RSS and time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench-out" / "scale"


def tree_rss(proc) -> int:
    import psutil

    total = 0
    with contextlib.suppress(psutil.Error):
        p = psutil.Process(proc.pid)
        for q in [p, *p.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += q.memory_info().rss
    return total


def run(cmd: list[str], first_line: str | None = None) -> dict:
    """Run ``cmd``; peak RSS of its tree, wall time, and when ``first_line`` first appeared
    on stderr."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, seen = [0], {}

    def watch():
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss(proc))
            time.sleep(0.05)

    def read_err():
        for line in proc.stderr:
            if first_line and first_line in line and "first" not in seen:
                seen["first"] = time.perf_counter() - t0
            seen.setdefault("tail", []).append(line)
            seen["tail"] = seen["tail"][-20:]

    threads = [threading.Thread(target=watch), threading.Thread(target=read_err)]
    for t in threads:
        t.start()
    stdout = proc.stdout.read()
    proc.wait()
    for t in threads:
        t.join()
    if proc.returncode:
        raise SystemExit(f"{cmd} failed:\n{''.join(seen.get('tail', []))}")
    return {
        "seconds": time.perf_counter() - t0,
        "peak_rss_gb": peak[0] / 1e9,
        "first_step_s": seen.get("first"),
        "stdout": stdout,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=250_000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--evaluate", action="store_true", help="also time c2s evaluate")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    n = args.cells
    h5 = OUT / f"cells_{n}.h5ad"
    ds = OUT / f"ds_{n}"
    exe = [str(ROOT / ".venv" / "bin" / "c2s")]
    res: dict = {
        "cells": n,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "command": "benchmarks/bench_scale.py " + " ".join(sys.argv[1:]),
    }
    if not h5.exists():
        import c2s

        c2s.datasets.write_synthetic_h5ad(
            h5, n, 2000, genes_per_cell=400, n_cell_types=8, seed=0, progress=False
        )
    if not ds.exists():
        res["convert"] = run([*exe, "convert", str(h5), str(ds), "--normalize", "--top-k", "200"])
    run_dir = OUT / f"run_{n}"
    cmd = [
        *exe, "-v", "train", str(ds), "--out", str(run_dir), "--overwrite", "--preset", "tiny",
        "--tasks", "cell_type_prediction", "--n-genes", "200", "--max-steps", str(args.steps),
        "--logging-steps", "1", "--eval-split", "", "--no-probe", "--no-calibrate",
        "--organism", "Homo sapiens", "--batch-size", "8",
    ]  # fmt: skip
    res["train"] = run(cmd, first_line="step 1:")
    res["train"]["stdout"] = res["train"]["stdout"][-2000:]
    if args.evaluate:
        ev = [
            *exe, "evaluate", str(run_dir), str(ds), "--out", str(OUT / f"eval_{n}"),
            "--overwrite", "--json",
        ]  # fmt: skip
        res["evaluate"] = run(ev)
        res["evaluate"]["metrics"] = json.loads(res["evaluate"].pop("stdout"))
        res["evaluate"]["command"] = " ".join(ev[1:])
    (OUT / f"train_{n}.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
