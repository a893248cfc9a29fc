"""Serving throughput: ``/v1/predict`` of ``c2s serve`` under 1, 8 and 32 concurrent
clients, next to ``c2s predict`` on the same cells.

    .venv/bin/python benchmarks/bench_serve.py [--model DIR] [--cells-per-request 1 10]

Model: the quickstart's cell-type predictor (``c2s quickstart`` is run into
bench-out/serve/quickstart when no --model is given and it is missing). Cells: scanpy's
bundled PBMC (700 cells). ``c2s predict MODEL pbmc.h5ad --out preds.csv`` is timed as a whole
process (best of 2) and in-process with the model loaded (``c2s.tl.predict``). Then
``c2s serve MODEL --device cpu`` runs in its own process; a load generator in this process
(asyncio + httpx, one connection per client) sends every cell 3 times per level as cell
sentences (ranked here as the server would, seed 0), ``n`` cells per request, from 1, 8 and 32
clients at once, after one warm-up request; each level is bounded by --max-seconds. Also one
.h5ad upload of all the cells. Each server setting of --windows (--batch-window-ms) is run. Every label the server returns is checked against
``c2s predict``'s. Server and load share this machine's cores.
With --repeats, each level runs that many times and the median run (by cells/s) is kept,
with every run's cells/s. Results: bench-out/serve/bench.json (--out to change).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench-out" / "serve"
C2S = str(Path(sys.executable).with_name("c2s"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model directory (default: the quickstart's)")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--cells-per-request", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--passes", type=int, default=3, help="times each cell is sent per level")
    ap.add_argument("--windows", type=float, nargs="+", default=[10.0, 0.0],
                    help="--batch-window-ms values to serve with")  # fmt: skip
    ap.add_argument("--repeats", type=int, default=1, help="runs per level (median reported)")
    ap.add_argument("--out", default=str(OUT / "bench.json"))
    ap.add_argument("--max-seconds", type=float, default=120.0, help="per level")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    model = Path(args.model) if args.model else quickstart_model()

    import c2s

    adata = c2s.datasets.pbmc68k_reduced()
    h5ad = OUT / "pbmc.h5ad"
    adata.write_h5ad(h5ad)
    m = c2s.model.C2SModel.from_pretrained(model, device="cpu")
    sentences = c2s.sentences.from_anndata(adata, n_genes=m.config.n_genes, seed=0).to_text()
    res = {"machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "date": time.strftime("%Y-%m-%d"), "model": str(model),
           "parameters": sum(p.numel() for p in m.model.parameters()),
           "n_cells": adata.n_obs, "command": "benchmarks/bench_serve.py " + " ".join(sys.argv[1:])}  # fmt: skip
    res["cli"], labels = cli_predict(model, h5ad)
    t = time.perf_counter()
    frame = c2s.tl.predict(adata, m, inplace=False, progress_bar=False)
    res["in_process_s"] = round(time.perf_counter() - t, 2)
    assert list(frame["c2s_prediction"]) == labels
    del m

    res["server"], res["upload"] = [], []
    for window in args.windows:
        port = free_port()
        server = subprocess.Popen(
            [C2S, "serve", str(model), "--port", str(port), "--device", "cpu",
             "--batch-window-ms", str(window)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            wait_up(base, server)
            for n in args.cells_per_request:
                for c in args.clients:
                    runs = [asyncio.run(load(base, sentences * args.passes, labels * args.passes,
                                             c, n, args.max_seconds))
                            for _ in range(args.repeats)]  # fmt: skip
                    row = sorted(runs, key=lambda r: r["cells_per_s"])[len(runs) // 2]
                    row["batch_window_ms"] = window
                    if len(runs) > 1:
                        row["cells_per_s_runs"] = [r["cells_per_s"] for r in runs]
                    print(json.dumps(row), flush=True)
                    res["server"].append(row)
            res["upload"].append({"batch_window_ms": window, **upload(base, h5ad, labels)})
            print(json.dumps(res["upload"][-1]), flush=True)
        finally:
            server.terminate()
            server.wait(30)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    return 0


def quickstart_model() -> Path:
    qs = OUT / "quickstart"
    if not (qs / "model" / "c2s_config.json").exists():
        subprocess.run([C2S, "quickstart", "--out", str(qs), "--overwrite"], check=True)
    return qs / "model"


def cli_predict(model: Path, h5ad: Path) -> tuple[dict, list[str]]:
    import pandas as pd

    times = []
    for _ in range(2):
        out = OUT / "preds.csv"
        out.unlink(missing_ok=True)
        t = time.perf_counter()
        subprocess.run([C2S, "predict", str(model), str(h5ad), "--out", str(out), "--device",
                        "cpu"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        times.append(time.perf_counter() - t)
    labels = list(pd.read_csv(out)["c2s_prediction"])
    best = min(times)
    return {"process_s": round(best, 2), "cells_per_s": round(len(labels) / best, 1)}, labels


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(base: str, server) -> None:
    import httpx

    t = time.monotonic()
    while time.monotonic() - t < 120:
        if server.poll() is not None:
            raise SystemExit("c2s serve exited before it answered")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("c2s serve did not answer within 120 s")


async def load(base, sentences, labels, clients: int, per_request: int, max_s: float) -> dict:
    import httpx

    chunks = [(i, sentences[i : i + per_request]) for i in range(0, len(sentences), per_request)]
    queue: asyncio.Queue = asyncio.Queue()
    for ch in chunks:
        queue.put_nowait(ch)
    latencies, wrong, done_cells = [], 0, 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as http:
        await http.post("/v1/predict", json={"sentences": sentences[:per_request]})  # warm-up
        t0 = time.perf_counter()

        async def client():
            nonlocal wrong, done_cells
            while not queue.empty() and time.perf_counter() - t0 < max_s:
                i, batch = queue.get_nowait()
                t = time.perf_counter()
                r = await http.post("/v1/predict", json={"sentences": batch})
                latencies.append(time.perf_counter() - t)
                r.raise_for_status()
                got = [p["label"] for p in r.json()["predictions"]]
                wrong += sum(g != w for g, w in zip(got, labels[i : i + len(batch)], strict=True))
                done_cells += len(batch)

        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    lat = sorted(latencies)
    return {
        "clients": clients, "cells_per_request": per_request, "requests": len(lat),
        "cells": done_cells, "seconds": round(elapsed, 2),
        "requests_per_s": round(len(lat) / elapsed, 1), "cells_per_s": round(done_cells / elapsed, 1),
        "latency_p50_ms": round(1000 * statistics.median(lat), 1),
        "latency_p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1),
        "labels_differing_from_cli": wrong,
    }  # fmt: skip


def upload(base: str, h5ad: Path, labels) -> dict:
    import httpx

    t = time.perf_counter()
    with open(h5ad, "rb") as f:
        r = httpx.post(base + "/v1/predict", files={"file": ("pbmc.h5ad", f)}, timeout=300)
    r.raise_for_status()
    s = time.perf_counter() - t
    got = [p["label"] for p in r.json()["predictions"]]
    return {"seconds": round(s, 2), "cells_per_s": round(len(got) / s, 1),
            "labels_differing_from_cli": sum(g != w for g, w in zip(got, labels, strict=True))}  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
