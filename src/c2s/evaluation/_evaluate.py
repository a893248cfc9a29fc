"""Running an evaluation: the options, the tasks to score, and the order of the parts."""

from __future__ import annotations

import os
from pathlib import Path

from c2s._errors import C2SError
from c2s._logging import Stopwatch
from c2s.evaluation._annotation import annotation
from c2s.evaluation._embedding import embedding, reconstruction
from c2s.evaluation._generation import generation
from c2s.evaluation._options import EvalOptions
from c2s.evaluation._plots import loss_plot
from c2s.evaluation._report import write_outputs


def evaluate(
    model,
    dataset,
    out: str | os.PathLike | None = None,
    *,
    split: str = "test",
    batch_size: int = 16,
    seed: int = 0,
    tasks=None,
    n_genes: int | None = None,
    organism: str | None = None,
    overwrite: bool = False,
    plot_dir: str | os.PathLike | None = None,
    progress_bar: bool | None = None,
    verbose: bool = False,
    stopwatch: Stopwatch | None = None,
) -> dict:
    """Evaluate ``model`` (a :class:`~c2s.model.C2SModel` or a path) on ``dataset``'s
    ``split`` against the baselines.

    Parameters
    ----------
    out
        A directory to create (atomically; an existing one needs ``overwrite``) with
        ``metrics.json``, ``report.md``, PNG plots, ``predictions.csv`` and
        ``generated.h5ad``.
    tasks, n_genes, organism
        Default to the model's ``c2s_config.json``; a released checkpoint has none, so give
        them (labels then come from the training cells). An unknown task name is an error;
        known tasks that are not scored yet are listed under ``skipped``.
    plot_dir
        Instead of ``out``: an existing directory that receives the plots and data files
        only (a report that embeds them writes its own metrics, as the quickstart does).
    verbose, stopwatch
        Announce each part on stderr; time the parts on this stopwatch (``timing_s``).

    Returns
    -------
    The metrics dictionary (keys ``annotation``, ``generation``, ``embedding``,
    ``reconstruction``, ``skipped``, ``plots``, ``timing_s``, ...; baselines under their own
    names).
    """
    from c2s._atomic import atomic_dir
    from c2s.io import C2SDataset, read_dataset
    from c2s.model import C2SModel

    if out is not None and plot_dir is not None:
        raise C2SError("Give out= (a new report directory) or plot_dir=, not both.")
    m = model if isinstance(model, C2SModel) else C2SModel.from_pretrained(model)
    ds = dataset if isinstance(dataset, C2SDataset) else read_dataset(dataset)
    idx = ds.split_indices()
    if len(idx.get(split, [])) == 0:
        raise C2SError(
            f"The dataset has no {split!r} cells (splits: "
            f"{ {k: len(v) for k, v in idx.items()} }); pass split= one that has cells."
        )
    if len(idx.get("train", [])) == 0:
        raise C2SError("The dataset has no training cells to fit the baselines on.")
    clock = stopwatch or Stopwatch(verbose, prefix="evaluate")
    opts = EvalOptions(split, batch_size, seed, progress_bar, tasks, n_genes, organism)
    if out is None:
        return run_parts(m, ds, None if plot_dir is None else Path(plot_dir), opts, clock)
    inputs = [getattr(m, "name_or_path", None), ds.path]
    with atomic_dir(out, overwrite=overwrite, kind="evaluation", inputs=inputs) as tmp:
        res = run_parts(m, ds, Path(tmp), opts, clock)
        write_outputs(res, Path(tmp))
    return res


def _label_tasks(model, tasks) -> list[str]:
    """The single-cell label tasks among ``tasks``; an unknown name is an error."""
    from c2s.prompts import Renderer

    out = []
    for t in tasks:
        try:
            task = Renderer(t, profile=model.config.profile).task
        except C2SError as e:
            raise C2SError(
                f"Cannot evaluate task {t!r}: {e} A task of your own must be registered "
                "(c2s.prompts.register_task) in the process that evaluates it."
            ) from None
        if task.answer == "label" and task.kind == "single":
            out.append(t)
    return out


def run_parts(m, ds, plot_dir: Path | None, o: EvalOptions, clock: Stopwatch) -> dict:
    """Every part of the evaluation, in order; plots go into ``plot_dir`` when given."""
    tasks = list(o.tasks or m.config.tasks or [])
    if not tasks:
        raise C2SError(
            "The model's c2s_config.json names no tasks (a released checkpoint?): pass tasks= "
            "(--tasks cell_type_prediction cell_type_generation), with n_genes= and organism=."
        )
    label_tasks = _label_tasks(m, tasks)
    res: dict = {
        "model": {
            "path": str(getattr(m, "name_or_path", "") or ""),
            "tasks": tasks,
            "n_genes": o.n_genes or m.config.n_genes,
            "architecture": m.model.config.model_type,
            "parameters": int(sum(p.numel() for p in m.model.parameters())),
        },
        "dataset": {"path": str(ds.path), "n_cells": ds.n_cells},
        "split": o.split,
        "skipped": {},
        "plots": {},
    }
    for t in label_tasks[:1]:
        res["annotation"] = clock.run(
            "annotation", lambda t=t: annotation(m, ds, t, o, plot_dir, res)
        )
    for t in label_tasks[1:]:
        res["skipped"][t] = "only the first label task is scored"
    if "cell_type_generation" in tasks:
        res["generation"] = clock.run("generation", lambda: generation(m, ds, o, plot_dir, res))
    for t in tasks:
        if t not in label_tasks and t != "cell_type_generation":
            res["skipped"][t] = "not scored by c2s evaluate yet (use c2s.metrics directly)"
    res["embedding"] = clock.run("embedding", lambda: embedding(m, ds, o, plot_dir, res))
    res["reconstruction"] = clock.run(
        "reconstruction", lambda: reconstruction(ds, o.split, o.seed, plot_dir, res)
    )
    if plot_dir is not None:
        loss_plot(m, plot_dir, res)
    res["timing_s"] = dict(clock.times)
    return res
