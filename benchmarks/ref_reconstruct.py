"""Time the reference package's inverse transform (cell sentence -> expression vector).

Runs inside .venv-ref (``make bench-ref``) and only calls the public API of the
reference PyPI package ``cell2sentence==1.2.0``; nothing from it is reproduced here.

    .venv-ref/bin/python benchmarks/ref_reconstruct.py DATA.h5ad [--n N] [--sample-size S]

Steps (DATA.h5ad holds log-normalized expression in .X):
  1. fit: ``utils.benchmark_expression_conversion(outdir, name, X, sample_size=S)``, the
     reference's only fitting routine. It fits expression ~ log10(1 + rank) on S sampled
     cells and writes a metrics CSV (slope, intercept, R^2, ...) and two plots; we read
     slope/intercept/R^2 back from the CSV. Timed as fit_s (plots included: the
     reference always draws them).
  2. sentences: ``CSData.adata_to_arrow(adata)`` gives full-length sentences (all
     expressed genes) and the vocabulary. Not timed.
  3. reconstruct: ``utils.reconstruct_expression_from_cell_sentence`` on N sentences
     (cycling over the cells if N > n_cells), one call per cell, as the reference does.
     This is ``seconds`` / ``cells_per_s``.
Afterwards (not timed) the R^2 / Pearson r of reconstructed vs. original values over the
expressed entries of the reconstructed cells is reported as a sanity check.

Prints one JSON line on stdout; everything the reference prints goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("h5ad")
    p.add_argument(
        "--n", type=int, default=None, help="sentences to reconstruct (default: all cells)"
    )
    p.add_argument("--sample-size", type=int, default=1024, help="cells used by the reference fit")
    p.add_argument(
        "--seed", type=int, default=0, help="seeds numpy's global RNG for the fit's sampling"
    )
    p.add_argument("--fit-dir", default=None, help="where the reference writes its fit outputs")
    args = p.parse_args(argv)

    os.environ.setdefault("TQDM_DISABLE", "1")
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    from cell2sentence import CSData
    from cell2sentence.utils import (
        benchmark_expression_conversion,
        reconstruct_expression_from_cell_sentence,
    )

    adata = ad.read_h5ad(args.h5ad)
    X = sp.csr_matrix(adata.X)  # the reference fit calls .todense() on row slices
    fit_dir = args.fit_dir or tempfile.mkdtemp(prefix="ref_fit_")
    os.makedirs(fit_dir, exist_ok=True)

    with contextlib.redirect_stdout(sys.stderr):
        np.random.seed(args.seed)  # noqa: NPY002 (the reference samples with the global RNG)
        t0 = time.perf_counter()
        benchmark_expression_conversion(fit_dir, "ref", X, sample_size=args.sample_size)
        fit_s = time.perf_counter() - t0
        metrics = pd.read_csv(
            os.path.join(fit_dir, "ref_benchmark", "c2s_transformation_metrics.csv")
        )
        slope = float(metrics["slope"].iloc[0])
        intercept = float(metrics["intercept"].iloc[0])
        r2_fit = float(metrics["r_squared"].iloc[0])

        arrow_ds, vocab = CSData.adata_to_arrow(adata)
    sentences = arrow_ds["cell_sentence"]
    vocab_list = list(vocab.keys())
    n_cells = len(sentences)
    n = args.n if args.n is not None else n_cells
    order = [i % n_cells for i in range(n)]

    t0 = time.perf_counter()
    recon = [
        reconstruct_expression_from_cell_sentence(sentences[i], " ", vocab_list, slope, intercept)
        for i in order
    ]
    seconds = time.perf_counter() - t0

    # Sanity check (not timed): agreement on the expressed entries of the cells rebuilt.
    uniq = sorted(set(order))
    orig = X[uniq]
    rec = np.vstack([recon[i] for i in uniq])  # order[i] == i for i < n_cells
    rows, cols = orig.nonzero()
    y, yhat = np.asarray(orig[rows, cols]).ravel(), rec[rows, cols]
    ss_res = float(((y - yhat) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())

    out = {
        "impl": "cell2sentence==1.2.0",
        "task": "reconstruct",
        "n_cells": n,
        "n_genes": adata.n_vars,
        "seconds": round(seconds, 6),
        "cells_per_s": round(n / seconds, 3) if seconds > 0 else None,
        "fit_s": round(fit_s, 6),
        "fit_sample_size": min(args.sample_size, n_cells),
        "slope": slope,
        "intercept": intercept,
        "r2_fit": r2_fit,
        "r2_recon_nonzero": 1 - ss_res / ss_tot if ss_tot > 0 else None,
        "pearson_recon_nonzero": float(np.corrcoef(y, yhat)[0, 1]),
        "fit_dir": fit_dir,
    }
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
