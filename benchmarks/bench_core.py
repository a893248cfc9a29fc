"""Core benchmarks: conversion, streaming, reconstruction, inverse-model quality.

Side by side with the reference package (cell2sentence==1.2.0, in .venv-ref) in one run:

    make bench                       # or: .venv/bin/python benchmarks/bench_core.py
    .venv/bin/python benchmarks/bench_core.py --skip-stream --cells 5000   # a quick look

Results go to bench-out/core.json and a Markdown summary is printed for BENCHMARKS.md.
Both sides start from the same in-memory AnnData (reading the .h5ad is not timed for
either) and end with the dataset on disk. Each side's best of ``--repeat`` runs is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF_PY = ROOT / ".venv-ref" / "bin" / "python"
PY = sys.executable


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import psutil

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "date": datetime.date.today().isoformat(),
    }


def run_json(cmd: list[str], **kw) -> dict:
    """Run a command that prints one JSON object as its last stdout line."""
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def ours(snippet: str, *args: str) -> dict:
    """Run a timing snippet of ours in a fresh process (numba's on-disk cache is warm)."""
    env = dict(os.environ, C2S_NO_PROGRESS="1")
    return run_json([PY, "-c", textwrap.dedent(snippet), *args], env=env)


CONVERT = """
import json, sys, time, anndata as ad, c2s
path, out, top_k, values, repeat = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1", int(sys.argv[5])
top_k = None if top_k == "none" else int(top_k)
adata = ad.read_h5ad(path)
c2s.io.convert(adata[:64].copy(), out + "-warm", overwrite=True, n_genes=top_k, with_values=values)
best = None
for _ in range(repeat):
    t = time.perf_counter()
    c2s.io.convert(adata, out, overwrite=True, n_genes=top_k, with_values=values)
    s = time.perf_counter() - t
    best = s if best is None else min(best, s)
print(json.dumps({"seconds": best, "cells_per_s": adata.n_obs / best, "n_cells": adata.n_obs}))
"""

RECONSTRUCT = """
import json, sys, time, c2s
ds = c2s.io.read_dataset(sys.argv[1])
cs = ds.sentences(values=True, obs_columns=[])
lin = c2s.inverse.LinearInverse().fit(cs)
rm = c2s.inverse.RankMeanInverse().fit(cs)
out = {"n_cells": cs.n_cells}
for name, m in (("linear", lin), ("rank_mean", rm)):
    best = None
    for _ in range(3):
        t = time.perf_counter()
        a = c2s.inverse.reconstruct(cs, m)
        s = time.perf_counter() - t
        best = s if best is None else min(best, s)
    out[name] = {"seconds": best, "cells_per_s": cs.n_cells / best}
print(json.dumps(out))
"""

QUALITY = """
import json, sys, c2s
res = {}
pb = c2s.datasets.pbmc68k_reduced()
c2s.io.convert(pb, sys.argv[1] + "/pbmc", overwrite=True, stratify="cell_type", obs_keys=["cell_type"])
for name, path in (("pbmc68k_reduced", sys.argv[1] + "/pbmc"), ("synthetic_20k", sys.argv[2])):
    cs = c2s.io.read_dataset(path).sentences(obs_columns=[])
    fit = c2s.inverse.fit_inverse(cs)
    res[name] = {"selected": fit.selected, "metrics": fit.metrics,
                 "n_train": fit.n_train_cells, "n_heldout": fit.n_heldout_cells}
print(json.dumps(res))
"""


def tree_peak_rss(cmd: list[str], env=None) -> tuple[float, float, int]:
    """Run ``cmd``; return (seconds, peak RSS of the process tree in MB, exit code)."""
    import psutil

    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            procs = [ps, *ps.children(recursive=True)]
            rss = 0
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    rss += p.memory_info().rss
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed: {err[-2000:]}")
    return time.perf_counter() - t, peak / 2**20, proc.returncode


def dir_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench-out"))
    ap.add_argument("--cells", type=int, default=20000)
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--genes-per-cell", type=int, default=3600)
    ap.add_argument("--stream-cells", type=int, default=200000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-ref", action="store_true")
    ap.add_argument("--skip-stream", action="store_true")
    ap.add_argument(
        "--sections",
        default="convert,file,reconstruct,quality,stream",
        help="comma-separated subset to run; results merge into an existing core.json",
    )
    args = ap.parse_args()

    import c2s

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sections = set(args.sections.split(","))
    if args.skip_stream:
        sections.discard("stream")
    results_path = out / "core.json"
    results: dict = json.loads(results_path.read_text()) if results_path.exists() else {}
    results.update({"machine": machine(), "args": vars(args)})

    def save():
        results_path.write_text(json.dumps(results, indent=2, sort_keys=True))

    h5ad = out / f"synth_{args.cells}x{args.genes}_{args.genes_per_cell}.h5ad"
    if not h5ad.exists():
        print(f"writing {h5ad} ...", file=sys.stderr)
        c2s.datasets.write_synthetic_h5ad(
            h5ad, args.cells, args.genes, genes_per_cell=args.genes_per_cell, normalize=True
        )
    have_ref = REF_PY.exists() and not args.skip_ref

    # 1. conversion, side by side ------------------------------------------------------
    if "convert" in sections:
        conv = {}
        runs = (("full", "none", "1"), ("full_no_values", "none", "0"), ("top200", "200", "1"))
        for label, top_k, values in runs:
            print(f"ours: convert {label} ...", file=sys.stderr)
            conv[f"ours_{label}"] = ours(
                CONVERT, str(h5ad), str(out / f"ours_{label}"), top_k, values, str(args.repeat)
            )
        if have_ref:
            for label, extra in (("full", []), ("top200", ["--top-k", "200"])):
                print(f"reference: convert {label} ...", file=sys.stderr)
                script = str(ROOT / "benchmarks" / "ref_convert.py")
                dest = str(out / f"ref_{label}")
                conv[f"ref_{label}"] = run_json(
                    [str(REF_PY), script, str(h5ad), dest, *extra, "--repeat", "1"]
                )
            for label, _, _ in runs:
                ref = conv["ref_top200" if label == "top200" else "ref_full"]
                conv[f"speedup_{label}"] = conv[f"ours_{label}"]["cells_per_s"] / ref["cells_per_s"]
        results["convert"] = conv
        save()

    # 1b. conversion from the file, whole processes as a user runs them --------------------
    if "file" in sections:
        env = dict(os.environ, C2S_NO_PROGRESS="1", TQDM_DISABLE="1")
        c2s_bin = str(Path(PY).parent / "c2s")
        runs = {}
        for label, extra in (("full", []), ("top200", ["--top-k", "200"])):
            dest = out / f"file_{label}"
            best = None
            for _ in range(args.repeat):
                print(f"ours: c2s convert FILE ({label}) ...", file=sys.stderr)
                secs, peak, _ = tree_peak_rss(
                    [c2s_bin, "convert", str(h5ad), str(dest), "--overwrite", *extra], env=env
                )
                if best is None or secs < best["seconds"]:
                    best = {"seconds": secs, "peak_rss_mb": peak}
            runs[f"ours_{label}"] = best
            if have_ref:
                print(f"reference: whole process ({label}) ...", file=sys.stderr)
                script = str(ROOT / "benchmarks" / "ref_convert.py")
                secs, peak, _ = tree_peak_rss(
                    [str(REF_PY), script, str(h5ad), str(out / f"ref_file_{label}"), *extra],
                    env=env,
                )
                runs[f"ref_{label}"] = {"seconds": secs, "peak_rss_mb": peak}
                runs[f"speedup_{label}"] = secs / best["seconds"]
        results["file"] = runs | {"n_cells": args.cells}
        save()

    # 2. reconstruction, side by side --------------------------------------------------
    if "reconstruct" in sections:
        print("ours: reconstruct ...", file=sys.stderr)
        results["reconstruct"] = {"ours": ours(RECONSTRUCT, str(out / "ours_full"))}
        save()
        if have_ref:
            print("reference: reconstruct ...", file=sys.stderr)
            rec = results["reconstruct"]
            rec["ref"] = run_json(
                [str(REF_PY), str(ROOT / "benchmarks" / "ref_reconstruct.py"), str(h5ad)]
            )
            rec["speedup_linear"] = rec["ours"]["linear"]["cells_per_s"] / rec["ref"]["cells_per_s"]
            save()

    # 3. inverse-model quality -----------------------------------------------------------
    if "quality" in sections:
        print("inverse quality ...", file=sys.stderr)
        results["inverse_quality"] = ours(QUALITY, str(out), str(out / "ours_full"))
        save()

    # 4. streaming a large backed file -----------------------------------------------------
    if "stream" in sections:
        big = out / f"synth_{args.stream_cells}x{args.genes}_{args.genes_per_cell}.h5ad"
        if not big.exists():
            print(f"writing {big} (chunked) ...", file=sys.stderr)
            c2s.datasets.write_synthetic_h5ad(
                big,
                args.stream_cells,
                args.genes,
                genes_per_cell=args.genes_per_cell,
                normalize=True,
                progress=True,
            )
        runs = []
        env = dict(os.environ, C2S_NO_PROGRESS="1")
        c2s_bin = str(Path(PY).parent / "c2s")
        # chunk None: the default (2048 // workers cells per read).
        for chunk, workers in ((None, 1), (4096, 1), (None, 2), (512, 2)):
            dest = out / f"stream_c{chunk}_w{workers}"
            print(f"ours: stream convert chunk={chunk} workers={workers} ...", file=sys.stderr)
            secs, peak, _ = tree_peak_rss(
                [c2s_bin, "convert", str(big), str(dest), "--workers", str(workers), "--overwrite"]
                + (["--chunk-size", str(chunk)] if chunk else []),
                env=env,
            )
            runs.append(
                {
                    "chunk_size": chunk,
                    "workers": workers,
                    "seconds": secs,
                    "cells_per_s": args.stream_cells / secs,
                    "peak_rss_mb": peak,
                    "digest": dir_digest(dest),
                }
            )
        results["stream"] = {
            "n_cells": args.stream_cells,
            "file_gb": big.stat().st_size / 2**30,
            "runs": runs,
            "identical_outputs": len({r["digest"] for r in runs}) == 1,
        }
    save()
    print(json.dumps(results, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
