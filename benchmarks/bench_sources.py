"""Where the data lives: a TileDB-SOMA experiment -> dataset next to .h5ad -> dataset on the
same cells, and conversion on a Dask cluster with 1 and 2 local workers.

    .venv/bin/python benchmarks/bench_sources.py [--soma-cells 50000] [--dask-cells 250000]

SOMA: synthetic counts (2,000 genes, ~400 expressed per cell), written once as an .h5ad
and as a SOMA experiment (``tiledbsoma.io.from_anndata``); ``c2s convert`` of each with
``--normalize --top-k 200`` and the same obs columns, whole processes, best of 2, peak RSS
of the process tree; the shards' digests must agree.

Dask: the 250,000-cell file of ``bench_scale.py`` (written if missing), converted with
``--normalize --top-k 200`` by ``c2s convert`` on this machine, then through
``convert(client=...)`` on a ``LocalCluster`` of 1 and of 2 worker processes (one thread
each), timed from submission to the renamed directory, with each worker's peak RSS
(``ru_maxrss``) and the digests of every file against the local run.
Results: bench-out/sources/bench.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench-out" / "sources"
sys.path.insert(0, str(ROOT / "benchmarks"))


def digests(d: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            for p in sorted(d.iterdir()) if p.suffix == ".parquet"}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--soma-cells", type=int, default=50_000)
    ap.add_argument("--dask-cells", type=int, default=250_000)
    ap.add_argument("--parts", nargs="+", default=["soma", "dask"])
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "bench.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    res.update({"machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "date": time.strftime("%Y-%m-%d"),
                "command": "benchmarks/bench_sources.py " + " ".join(sys.argv[1:])})  # fmt: skip
    if "soma" in args.parts:
        res["soma"] = soma(args.soma_cells)
        path.write_text(json.dumps(res, indent=1))
    if "dask" in args.parts:
        res["dask"] = dask(args.dask_cells)
        path.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    return 0


def soma(n: int) -> dict:
    import anndata as ad
    import tiledbsoma.io
    from bench_scale import run

    import c2s

    h5 = OUT / f"cells_{n}.h5ad"
    uri = OUT / f"cells_{n}.soma"
    if not h5.exists():
        c2s.datasets.write_synthetic_h5ad(h5, n, 2000, genes_per_cell=400, n_cell_types=8,
                                          seed=0, progress=False)  # fmt: skip
    if not uri.exists():
        # on the AnnData as read, from_anndata (tiledbsoma 2.3.0) ran 8 min without writing;
        # on a copy of it, 17 s
        adata = ad.read_h5ad(h5)[:].copy()
        tiledbsoma.io.from_anndata(str(uri), adata, measurement_name="RNA")
    exe = str(ROOT / ".venv" / "bin" / "c2s")
    out = {"cells": n}
    for name, src, extra in (("h5ad", h5, []), ("soma", uri, ["--x-name", "data"])):
        best = None
        for _ in range(2):
            dst = OUT / f"ds_{name}"
            shutil.rmtree(dst, ignore_errors=True)
            # the same obs columns (a SOMA source adds soma_joinid by default)
            obs = ["--obs", "cell_type", "tissue", "donor", "organism"]
            r = run(
                [exe, "convert", str(src), str(dst), "--normalize", "--top-k", "200", *obs, *extra]
            )
            if best is None or r["seconds"] < best["seconds"]:
                best = r
        out[name] = {"seconds": round(best["seconds"], 2), "cells_per_s": round(n / best["seconds"]),
                     "peak_rss_mb": round(best["peak_rss_gb"] * 1000), "digests": digests(OUT / f"ds_{name}")}  # fmt: skip
    out["identical_shards"] = out["h5ad"]["digests"] == out["soma"]["digests"]
    return out


def dask(n: int) -> dict:
    from bench_scale import OUT as SCALE
    from bench_scale import run
    from distributed import Client, LocalCluster

    import c2s

    h5 = SCALE / f"cells_{n}.h5ad"
    if not h5.exists():
        SCALE.mkdir(parents=True, exist_ok=True)
        c2s.datasets.write_synthetic_h5ad(h5, n, 2000, genes_per_cell=400, n_cell_types=8,
                                          seed=0, progress=False)  # fmt: skip
    exe = str(ROOT / ".venv" / "bin" / "c2s")
    local = OUT / "dask_local"
    shutil.rmtree(local, ignore_errors=True)
    r = run([exe, "convert", str(h5), str(local), "--normalize", "--top-k", "200"])
    out = {
        "cells": n,
        "local": {"seconds": round(r["seconds"], 2), "peak_rss_mb": round(r["peak_rss_gb"] * 1000)},
    }
    want = digests(local)
    for workers in (1, 2):
        dst = OUT / f"dask_{workers}"
        shutil.rmtree(dst, ignore_errors=True)
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:  # fmt: skip
            t = time.perf_counter()
            c2s.io.convert(h5, dst, normalize=True, n_genes=200, client=client)
            secs = time.perf_counter() - t
            rss = client.run(_peak_rss_mb)
        out[f"workers_{workers}"] = {
            "seconds": round(secs, 2), "cells_per_s": round(n / secs),
            "peak_rss_mb_per_worker": sorted(round(v) for v in rss.values()),
            "identical_to_local": digests(dst) == want,
        }  # fmt: skip
    out["shards"] = len(want)
    return out


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main())
