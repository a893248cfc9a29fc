"""The end-to-end demo on scanpy's bundled PBMC data (``c2s quickstart``).

Stages so far: convert -> fit and evaluate the inverse transform -> report. Later stages
(training, inference, evaluation) add their own sections to the same report.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from c2s._atomic import atomic_dir
from c2s._version import __version__


class _Stages:
    def __init__(self, verbose: bool):
        self.times: dict[str, float] = {}
        self.verbose = verbose

    def run(self, name: str, fn):
        import sys

        if self.verbose:
            print(f"[quickstart] {name} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        out = fn()
        self.times[name] = round(time.perf_counter() - t, 3)
        if self.verbose:
            print(
                f"[quickstart] {name} done in {self.times[name]:.1f} s", file=sys.stderr, flush=True
            )
        return out


def run_quickstart(
    out_dir: str | os.PathLike, *, overwrite: bool = False, seed: int = 0, verbose: bool = True
) -> dict:
    """Run the quickstart and write the report to ``out_dir``.

    Returns
    -------
    The metrics dictionary also written to ``out_dir/metrics.json``.
    """
    from c2s.cli._inverse import write_plots
    from c2s.datasets import pbmc68k_reduced
    from c2s.inverse import fit_inverse
    from c2s.io import convert

    st = _Stages(verbose)
    t0 = time.perf_counter()
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        adata = st.run("load PBMC data", pbmc68k_reduced)
        ds = st.run(
            "convert",
            lambda: convert(
                adata,
                tmp / "dataset",
                obs_keys=["cell_type", "organism", "tissue", "louvain"],
                seed=seed,
                stratify="cell_type",
                progress_bar=verbose,
            ),
        )
        cs = ds.sentences(obs_columns=["cell_type"])
        fit = st.run("fit inverse transform", lambda: fit_inverse(cs, seed=seed))
        ds.update_meta(inverse=fit.to_dict())
        plots = st.run("plots", lambda: write_plots(cs, fit, tmp))
        info = ds.info()
        metrics = {
            "package_version": __version__,
            "data": {
                "name": "pbmc68k_reduced (scanpy, .raw log-normalized)",
                "n_cells": info["n_cells"],
                "n_genes": info["n_genes"],
                "n_cell_types": int(adata.obs["cell_type"].nunique()),
                "sentence_length": info["lengths"],
                "split": info["split"],
            },
            "inverse": {
                "selected": fit.selected,
                "heldout": fit.metrics,
                "n_train_cells": fit.n_train_cells,
                "n_heldout_cells": fit.n_heldout_cells,
            },
            "timing_s": st.times,
        }
        metrics["timing_s"]["total"] = round(time.perf_counter() - t0, 3)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        (tmp / "report.md").write_text(
            _report(metrics, {k: Path(v).name for k, v in plots.items()})
        )
    metrics["out_dir"] = str(out_dir)
    return metrics


def _report(m: dict, plots: dict) -> str:
    d, inv = m["data"], m["inverse"]
    L = d["sentence_length"]
    rows = "\n".join(
        f"| {name}{' (selected)' if name == inv['selected'] else ''} | {v['r2']:.4f} | "
        f"{v['pearson']:.4f} | {v['spearman']:.4f} |"
        for name, v in inv["heldout"].items()
    )
    times = "\n".join(f"| {k} | {v:.2f} |" for k, v in m["timing_s"].items())
    return f"""# c2s quickstart report

c2s {m["package_version"]}, Python {platform.python_version()}, {platform.machine()}.

## Data
{d["name"]}: {d["n_cells"]} cells x {d["n_genes"]} genes, {d["n_cell_types"]} cell types.
Sentence length (expressed genes per cell): mean {L["mean"]:.1f}, median {L["median"]},
min {L["min"]}, max {L["max"]}. Split (stratified by cell type): {d["split"]}.

## Rank -> expression (inverse transform)
Fitted on the {inv["n_train_cells"]} training cells, scored on the expressed genes of the
{inv["n_heldout_cells"]} held-out cells.

| model | R^2 | Pearson | Spearman |
|---|---|---|---|
{rows}

`linear` is the published fit (log-rank regression); `rank_mean` is the mean expression
per rank, conditioned on sentence length.

![fit]({plots["inverse_fit"]})
![reconstruction]({plots["reconstruction"]})

## Wall time (seconds)
| stage | s |
|---|---|
{times}

The dataset is in `dataset/` (inspect it with `c2s info dataset`).
"""
