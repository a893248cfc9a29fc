"""The end-to-end demo on scanpy's bundled PBMC data (``c2s quickstart``).

Stages: convert -> fit and evaluate the inverse transform -> train a small model from
scratch (cell-type prediction and cell-type-conditioned generation) -> evaluate it against
the baselines on the held-out cells (:func:`c2s.evaluation.evaluate`: predict, generate,
embed) -> report. ``metrics.json`` has the keys of ``c2s evaluate`` plus ``data``,
``inverse`` and ``training``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from pathlib import Path

from c2s._atomic import atomic_dir
from c2s._logging import Stopwatch
from c2s._version import __version__

# The training recipe: prediction examples are cheap (the loss, and so the vocabulary
# projection, covers only the answer), so they are repeated 4x per epoch; generation examples
# cost a projection per gene, and in a model this small they compete with prediction, so a
# seeded tenth of them is used per epoch. Measured on the 140 validation + test cells (label
# scoring, small preset, 50 genes; benchmarks in BENCHMARKS.md): 75% prediction alone for 10
# epochs, 66% with a tenth of the generation examples for 8 epochs, 50% with a quarter for 5.
TRAIN_TASKS = ["cell_type_prediction:4", "cell_type_generation:0.1"]
TRAIN_OPTIONS = {
    "n_genes": 50,
    "batch_size": 16,
    "learning_rate": 2e-3,
    "warmup": 0.05,
    "class_balance": 0.0,  # as measured in BENCHMARKS.md (the from-scratch default is 0.5)
    "deterministic": True,
    "logging_steps": 10,
    "max_eval_examples": 200,
}


def run_quickstart(
    out_dir: str | os.PathLike,
    *,
    overwrite: bool = False,
    seed: int = 0,
    verbose: bool = True,
    preset: str = "small",
    epochs: float = 8.0,
) -> dict:
    """Run the quickstart and write the report to ``out_dir``.

    ``preset`` and ``epochs`` size the model trained from scratch (``epochs=0`` skips it).

    Returns
    -------
    The metrics dictionary also written to ``out_dir/metrics.json``.
    """
    from c2s.datasets import pbmc68k_reduced
    from c2s.inverse import fit_inverse
    from c2s.io import convert
    from c2s.pl import inverse_plots

    st = Stopwatch(verbose, prefix="quickstart")
    t0 = time.perf_counter()
    with atomic_dir(out_dir, overwrite=overwrite, kind="quickstart") as tmp:
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
        plots = st.run("plots", lambda: inverse_plots(cs, fit, tmp))
        training = None
        if epochs > 0:
            training = st.run("train model", lambda: _train(ds, tmp, preset, epochs, seed, verbose))
            plots["loss_curve"] = training.pop("plot")
            evaluation = _evaluate(st, ds, tmp, seed, verbose)
            plots.update(evaluation.pop("plots"))
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
        if training is not None:
            metrics["training"] = training
            metrics.update(evaluation)
        metrics["timing_s"]["total"] = round(time.perf_counter() - t0, 3)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        (tmp / "report.md").write_text(
            _report(metrics, {k: Path(v).name for k, v in plots.items()})
        )
    metrics["out_dir"] = str(out_dir)
    return metrics


def _train(ds, tmp: Path, preset: str, epochs: float, seed: int, verbose: bool) -> dict:
    from c2s.model import C2SModel
    from c2s.pl import loss_curve, save_figure
    from c2s.train import fine_tune

    model = C2SModel.from_scratch(ds, preset=preset, max_length=1024, seed=seed)
    r = fine_tune(
        model, ds, output_dir=tmp / "model", tasks=TRAIN_TASKS, epochs=epochs, seed=seed,
        **TRAIN_OPTIONS,
    )  # fmt: skip
    shutil.rmtree(tmp / "model" / "checkpoints", ignore_errors=True)  # the demo needs no resume
    ax = loss_curve(r, title=f"{preset} model, trained from scratch on PBMC")
    save_figure(ax, tmp / "loss_curve.png")
    return {
        "preset": preset,
        "architecture": model.model.config.model_type,
        "parameters": r.total_parameters,
        "tasks": TRAIN_TASKS,
        "options": {**TRAIN_OPTIONS, "epochs": epochs},
        "steps": r.steps,
        "n_train_examples": r.n_train_examples,
        "train_loss": r.train_loss,
        "eval_loss": r.eval_loss,
        "eval_loss_per_task": r.eval_loss_per_task,
        "first_loss": r.loss_curve()[1][0],
        "tokens": r.tokens,
        "tokens_per_s": r.tokens_per_second,
        "padded_fraction": r.padded_fraction,
        "plot": str(tmp / "loss_curve.png"),
    }


def _evaluate(st, ds, tmp: Path, seed: int, verbose: bool) -> dict:
    """The trained model against the baselines on the held-out cells (c2s evaluate)."""
    from c2s.evaluation import evaluate
    from c2s.model import C2SModel

    model = C2SModel.from_pretrained(tmp / "model")
    res = evaluate(model, ds, plot_dir=tmp, seed=seed, progress_bar=verbose, stopwatch=st)
    res.pop("timing_s")  # the stages are in the quickstart's own timing
    for key in ("model", "dataset", "split"):
        res.pop(key)
    return res


def _training_section(t: dict | None, plots: dict) -> str:
    if t is None:
        return ""
    tasks = ", ".join(f"`{x}`" for x in t["tasks"])
    per_task = "".join(
        f"| validation loss (end), `{k}` |  {v:.3f} |\n" for k, v in t["eval_loss_per_task"].items()
    )
    o = t["options"]
    return f"""
## Training a small model from scratch
A {t["parameters"] / 1e6:.1f}M-parameter {t["architecture"]} model (`{t["preset"]}` preset, one
token per gene) trained on the training split for {tasks} (a `:4` weight repeats each
example 4 times per epoch), {o["n_genes"]} genes per sentence, {o["epochs"]:g} epochs,
{t["steps"]} steps of {o["batch_size"]} examples.

| | value |
|---|---|
| loss at step 1 | {t["first_loss"]:.3f} |
| mean training loss | {t["train_loss"]:.3f} |
| validation loss (end), all answer tokens | {t["eval_loss"]:.3f} |
{per_task}| tokens/s (non-pad) | {t["tokens_per_s"]:,.0f} |
| padded positions | {t["padded_fraction"]:.2%} |

Losses are nats per answer token. The training curve alternates because batches are grouped
by length, so prediction batches (a few answer tokens, easy once learned) and generation
batches (50 genes to order, hard) take turns.

![loss curve]({plots["loss_curve"]})

The model is in `model/` (a Hugging Face directory plus `c2s_config.json`).
"""


def _evaluation_section(m: dict) -> str:
    from c2s.evaluation import report_sections

    if "annotation" not in m:
        return ""
    return f"""
## The model against baselines (held-out cells)
The trained model predicts the cell type of the {m["annotation"]["n_eval"]} held-out test
cells by scoring every label, generates as many cells per type as the test split has, and
embeds every cell. Logistic regression and k-NN are fit on the training cells' stored
expression; the generation references are built from the training cells.

{report_sections({**m, "plots": {}})}
![confusion matrix](confusion_matrix.png)
![generated vs real cells](umap_generated.png)
![UMAP of C2S embeddings](umap_embeddings.png)

Predictions are in `predictions.csv`, generated cells (expression from the inverse
transform) in `generated.h5ad`.
"""


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
{_training_section(m.get("training"), plots)}{_evaluation_section(m)}
## Wall time (seconds)
| stage | s |
|---|---|
{times}

The dataset is in `dataset/` (inspect it with `c2s info dataset`).
"""
