"""Time the reference package's AnnData -> cell-sentence dataset conversion.

Runs inside .venv-ref (``make bench-ref``) and only calls the public API of the
reference PyPI package ``cell2sentence==1.2.0``; nothing from it is reproduced here.

    .venv-ref/bin/python benchmarks/ref_convert.py DATA.h5ad OUTDIR [--top-k K] [--repeat R]

What is timed, per repeat (reading the h5ad is not timed, it is reported as load_s):
  1. ``CSData.adata_to_arrow(adata)``: vocabulary + full-length sentences (all expressed
     genes, highest first) into an in-memory arrow dataset            -> convert_s
  2. ``CSData.csdata_from_arrow(...)``: writing that dataset to OUTDIR  -> save_s
  3. only with --top-k: the reference has no top-k option at conversion time; it cuts
     sentences to K genes when it formats prompts, with
     ``prompt_formatter.get_cell_sentence_str(sample, num_genes=K)``. We apply that to
     every stored sentence (dataset re-read from disk with ``datasets.load_from_disk`` and
     read row by row, as the reference's tasks do), rebuild a dataset with ``utils.build_arrow_dataset`` and
     write it with ``CSData.csdata_from_arrow``                         -> topk_s
``seconds`` is convert_s + save_s (+ topk_s) of the fastest repeat.

Prints one JSON line on stdout; everything the reference prints goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("h5ad")
    p.add_argument("outdir")
    p.add_argument("--top-k", type=int, default=None, help="also time cutting sentences to K genes")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--label-cols", default="", help="comma-separated .obs columns to store too")
    p.add_argument("--random-state", type=int, default=42)
    args = p.parse_args(argv)

    os.environ.setdefault("TQDM_DISABLE", "1")  # progress bars would only clutter stderr
    import anndata as ad
    from cell2sentence import CSData
    from cell2sentence.prompt_formatter import get_cell_sentence_str
    from cell2sentence.utils import build_arrow_dataset
    from datasets import load_from_disk

    t0 = time.perf_counter()
    adata = ad.read_h5ad(args.h5ad)
    load_s = time.perf_counter() - t0
    label_cols = [c for c in args.label_cols.split(",") if c] or None

    runs = []
    for _ in range(max(1, args.repeat)):
        shutil.rmtree(args.outdir, ignore_errors=True)
        with contextlib.redirect_stdout(sys.stderr):
            t0 = time.perf_counter()
            arrow_ds, vocab = CSData.adata_to_arrow(
                adata, random_state=args.random_state, label_col_names=label_cols
            )
            t1 = time.perf_counter()
            csdata = CSData.csdata_from_arrow(
                arrow_ds, vocab, save_dir=args.outdir, save_name="ref_full"
            )
            t2 = time.perf_counter()
            run = {"convert_s": t1 - t0, "save_s": t2 - t1}
            if args.top_k is not None:
                t2 = time.perf_counter()
                # as the reference's own tasks do: load the saved dataset, read it row by row
                ds = load_from_disk(csdata.data_path)
                top = [
                    get_cell_sentence_str(ds[i], num_genes=args.top_k)[0]
                    for i in range(ds.num_rows)
                ]
                top_ds = build_arrow_dataset(
                    cell_names=ds["cell_name"],
                    sentences=top,
                    adata=adata,
                    label_col_names=label_cols,
                )
                CSData.csdata_from_arrow(top_ds, vocab, save_dir=args.outdir, save_name="ref_topk")
                run["topk_s"] = time.perf_counter() - t2
        run["seconds"] = sum(run.values())
        runs.append(run)

    best = min(runs, key=lambda r: r["seconds"])
    n = adata.n_obs
    out = {
        "impl": "cell2sentence==1.2.0",
        "task": "convert",
        "n_cells": n,
        "n_genes": adata.n_vars,
        "top_k": args.top_k,
        "seconds": round(best["seconds"], 6),
        "cells_per_s": round(n / best["seconds"], 3) if best["seconds"] > 0 else None,
        **{k: round(v, 6) for k, v in best.items() if k != "seconds"},
        "load_s": round(load_s, 6),
        "all_seconds": [round(r["seconds"], 6) for r in runs],
        "data_path": csdata.data_path,
    }
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
