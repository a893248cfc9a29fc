"""The end-to-end demo on scanpy's bundled PBMC data (``c2s quickstart``).

Stages: convert -> fit and evaluate the inverse transform -> train two small models from
scratch (a cell-type predictor and a cell-type-conditioned generator) -> evaluate them
against the baselines on the held-out cells (:func:`c2s.evaluation.evaluate`: predict and
embed with the predictor, generate with the generator) -> report. ``metrics.json`` has the
keys of ``c2s evaluate`` plus ``data``, ``inverse``, ``training`` (the predictor) and
``training_generator``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from c2s._atomic import atomic_dir
from c2s._deprecate import renamed
from c2s._logging import Stopwatch
from c2s._version import __version__

# Two small models, each trained with the recipe measured best for its task on PBMC's
# validation cells over seeds (BENCHMARKS.md, science section): a predictor trained on
# cell-type prediction with the from-scratch defaults (10 epochs, lr 2e-3, warmup 5%, batch
# 16, class balance 0.5), and a generator trained on cell-type generation alone for 10
# epochs. One model trained on both tasks (the earlier quickstart) scored 0.73 test accuracy,
# and a classifier of real cells recognized 0.3 of its generated cells; the two models score
# 0.77 and 0.6-0.7.
PREDICTOR = {"tasks": ["cell_type_prediction"], "n_genes": 50}
GENERATOR = {
    "tasks": ["cell_type_generation"], "n_genes": 50, "epochs": 10.0, "batch_size": 16,
    "learning_rate": 2e-3, "warmup": 0.05, "class_balance": 0.0,
}  # fmt: skip
COMMON = {"logging_steps": 10, "max_eval_examples": 200, "deterministic": True}


@renamed(out_dir="out")
def run_quickstart(
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    seed: int = 0,
    verbose: bool = True,
    preset: str = "small",
    epochs: float | None = None,
) -> dict:
    """Run the quickstart and write the report to the directory ``out`` (``out_dir=`` is its
    old name).

    ``preset`` sizes the models trained from scratch; ``epochs`` replaces both recipes'
    epochs (``0`` skips training).

    Returns
    -------
    The metrics dictionary also written to ``out/metrics.json`` (its ``out_dir`` key is
    ``out``).
    """
    _check_options(epochs, seed)
    st = Stopwatch(verbose, prefix="quickstart")
    t0 = time.perf_counter()
    with atomic_dir(out, overwrite=overwrite, kind="quickstart") as tmp:
        data = _prepare_data(st, tmp, seed, verbose)
        models = None
        if epochs is None or epochs > 0:
            models = _train_and_evaluate(st, data, tmp, preset, epochs, seed, verbose)
        metrics = _metrics(st, data, models)
        metrics["timing_s"]["total"] = round(time.perf_counter() - t0, 3)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        plots = {k: Path(v).name for k, v in data.plots.items()}
        (tmp / "report.md").write_text(_report(metrics, plots))
    metrics["out_dir"] = str(out)
    return metrics


def _check_options(epochs, seed) -> None:
    import math

    from c2s._errors import C2SError

    if epochs is not None and not (math.isfinite(epochs) and epochs >= 0):
        raise C2SError(f"epochs must be 0 (no training) or a positive number, got {epochs}.")
    if not isinstance(seed, int) or seed < 0:
        raise C2SError(f"seed must be a non-negative integer, got {seed!r}.")


@dataclass
class _Data:
    """The demo's data: the PBMC AnnData, its c2s dataset, the inverse transform fitted on
    it and the plots made so far (name -> path)."""

    adata: object
    dataset: object
    fit: object
    plots: dict


def _prepare_data(st: Stopwatch, tmp: Path, seed: int, verbose: bool) -> _Data:
    """Load the PBMC data, convert it into ``tmp/dataset``, fit the inverse transform (stored
    in the dataset) and plot it."""
    from c2s.datasets import pbmc68k_reduced
    from c2s.inverse import fit_inverse
    from c2s.io import convert
    from c2s.pl import inverse_plots

    adata = st.run("load PBMC data", pbmc68k_reduced)
    dataset = st.run(
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
    cs = dataset.sentences(obs_columns=["cell_type"])
    fit = st.run("fit inverse transform", lambda: fit_inverse(cs, seed=seed))
    dataset.update_meta(inverse=fit.to_dict())
    plots = st.run("plots", lambda: inverse_plots(cs, fit, tmp))
    return _Data(adata, dataset, fit, plots)


def _train_and_evaluate(st, data: _Data, tmp: Path, preset, epochs, seed, verbose) -> dict:
    """Train the predictor and the generator and evaluate them; their plots join
    ``data.plots``. Returns the metrics' ``training``, ``training_generator`` and
    evaluation entries."""
    ds = data.dataset
    training = st.run(
        "train predictor", lambda: _train(ds, tmp, "model", PREDICTOR, preset, epochs, seed)
    )
    generator = st.run(
        "train generator", lambda: _train(ds, tmp, "generator", GENERATOR, preset, epochs, seed)
    )
    data.plots["loss_curve"] = training.pop("plot")
    data.plots["loss_curve_generator"] = generator.pop("plot")
    evaluation = _evaluate(st, ds, tmp, seed, verbose)
    data.plots.update(evaluation.pop("plots"))
    return {"training": training, "training_generator": generator, **evaluation}


def _metrics(st: Stopwatch, data: _Data, models: dict | None) -> dict:
    """``metrics.json``: the data, the inverse transform, the stages' times and, when trained,
    the models' training and evaluation."""
    info, fit = data.dataset.info(), data.fit
    metrics = {
        "package_version": __version__,
        "data": {
            "name": "pbmc68k_reduced (scanpy, .raw log-normalized)",
            "n_cells": info["n_cells"],
            "n_genes": info["n_genes"],
            "n_cell_types": int(data.adata.obs["cell_type"].nunique()),
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
    metrics.update(models or {})
    return metrics


def _train(ds, tmp: Path, name: str, recipe: dict, preset: str, epochs, seed: int) -> dict:
    from c2s.model import C2SModel
    from c2s.pl import loss_curve, save_figure
    from c2s.train import fine_tune

    model = C2SModel.from_scratch(ds, preset=preset, max_length=1024, seed=seed)
    opts = {**recipe, **COMMON, **({} if epochs is None else {"epochs": epochs})}
    r = fine_tune(model, ds, out=tmp / name, seed=seed, **opts)
    shutil.rmtree(tmp / name / "checkpoints", ignore_errors=True)  # the demo needs no resume
    what = "predictor" if name == "model" else name
    ax = loss_curve(r, title=f"{preset} {what}, trained from scratch on PBMC")
    plot = tmp / ("loss_curve.png" if name == "model" else f"loss_curve_{name}.png")
    save_figure(ax, plot)
    return {
        "preset": preset,
        "architecture": model.model.config.model_type,
        "parameters": r.total_parameters,
        "tasks": opts["tasks"],
        "options": model.config.training["options"],
        "steps": r.steps,
        "n_train_examples": r.n_train_examples,
        "train_loss": r.train_loss,
        "eval_loss": r.eval_loss,
        "eval_loss_per_task": r.eval_loss_per_task,
        "first_loss": r.loss_curve()[1][0],
        "tokens": r.tokens,
        "tokens_per_s": r.tokens_per_second,
        "padded_fraction": r.padded_fraction,
        "plot": str(plot),
    }


def _evaluate(st, ds, tmp: Path, seed: int, verbose: bool) -> dict:
    """The trained models against the baselines on the held-out cells (c2s evaluate): the
    predictor's annotation, embeddings and reconstruction, the generator's cells."""
    from c2s.evaluation import evaluate

    kw = {"plot_dir": tmp, "seed": seed, "progress_bar": verbose, "stopwatch": st}
    res = evaluate(tmp / "model", ds, **kw)
    gen = evaluate(tmp / "generator", ds, parts=["generation"], **kw)
    res["generation"] = gen["generation"]
    res["plots"].update(gen["plots"])
    res.pop("timing_s")  # the stages are in the quickstart's own timing
    for key in ("model", "dataset", "split"):
        res.pop(key)
    return res


def _training_section(m: dict, plots: dict) -> str:
    if m.get("training") is None:
        return ""
    parts = ["\n## Training two small models from scratch\n"]
    for key, name, plot in (
        ("training", "model", "loss_curve"),
        ("training_generator", "generator", "loss_curve_generator"),
    ):
        t = m[key]
        o = t["options"]
        tasks = ", ".join(f"`{x}`" for x in t["tasks"])
        parts.append(
            f"""A {t["parameters"] / 1e6:.1f}M-parameter {t["architecture"]} model (`{t["preset"]}`
preset, one token per gene) trained on the training split for {tasks}, {o["n_genes"]} genes
per sentence, {o["epochs"]:g} epochs, learning rate {o["learning_rate"]:g}, class balance
{o["class_balance"]:g}: {t["steps"]} steps of {o["batch_size"]} examples, saved in `{name}/`.

| | value |
|---|---|
| loss at step 1 | {t["first_loss"]:.3f} |
| mean training loss | {t["train_loss"]:.3f} |
| validation loss (end), answer tokens | {t["eval_loss"]:.3f} |
| tokens/s (non-pad) | {t["tokens_per_s"]:,.0f} |
| padded positions | {t["padded_fraction"]:.2%} |

![loss curve]({plots[plot]})
"""
        )
    parts.append(
        "Losses are nats per answer token. Each directory is a Hugging Face model plus "
        "`c2s_config.json`. One model trained on both tasks predicts worse and generates much "
        "worse cells (BENCHMARKS.md, science section).\n"
    )
    return "\n".join(parts)


def _evaluation_section(m: dict) -> str:
    from c2s.evaluation import report_sections

    if "annotation" not in m:
        return ""
    return f"""
## The model against baselines (held-out cells)
The predictor labels the {m["annotation"]["n_eval"]} held-out test cells by scoring every
label (raw and calibrated) and by its linear probe, and embeds every cell; the generator
generates as many cells per type as the test split has. Logistic regression and k-NN are fit on the training cells' stored
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
{_training_section(m, plots)}{_evaluation_section(m)}
## Wall time (seconds)
| stage | s |
|---|---|
{times}

The dataset is in `dataset/` (inspect it with `c2s info dataset`).
"""
