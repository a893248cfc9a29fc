"""Running an evaluation: the model and cells it uses, the tasks to score, and the order of
the parts."""

from __future__ import annotations

import os
from pathlib import Path

from c2s._errors import C2SError
from c2s._logging import Stopwatch
from c2s.evaluation._annotation import annotation
from c2s.evaluation._description import TASK as DESCRIPTION_TASK
from c2s.evaluation._description import description
from c2s.evaluation._embedding import embedding, reconstruction
from c2s.evaluation._generation import generation
from c2s.evaluation._options import EvalOptions, takes_settings
from c2s.evaluation._perturbation import perturbation
from c2s.evaluation._plots import loss_plot
from c2s.evaluation._report import write_outputs


@takes_settings
def evaluate(
    model,
    dataset,
    out: str | os.PathLike | None = None,
    *,
    options: EvalOptions | None = None,
    overwrite: bool = False,
    plot_dir: str | os.PathLike | None = None,
    verbose: bool = False,
    stopwatch: Stopwatch | None = None,
    **settings,
) -> dict:
    """Evaluate ``model`` (a :class:`~c2s.model.C2SModel` or a path) on ``dataset``'s
    ``split`` against the baselines.

    Parameters
    ----------
    model
        A :class:`~c2s.model.C2SModel`, or its directory or hub id.
    dataset
        A c2s dataset (:func:`c2s.io.read_dataset`) or its directory, with a split.
    out
        A directory to create (atomically; an existing one needs ``overwrite``) with
        ``metrics.json``, ``report.md``, PNG plots, ``predictions.csv`` and
        ``generated.h5ad``.
    overwrite
        Replace an existing ``out`` (only one that c2s wrote).
    options, **settings
        The evaluation's settings: every field of :class:`EvalOptions` is a keyword here
        (``split``, ``batch_size``, ``seed``, ``tasks``, ``n_genes``, ``max_cells``, ...; see
        there for their meaning and defaults). ``options`` gives them as one object; keywords
        given as well replace its fields.
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
    from c2s.model import as_model

    if out is not None and plot_dir is not None:
        raise C2SError("Give out= (a new report directory) or plot_dir=, not both.")
    opts = EvalOptions.from_keywords(options, **settings)
    m = as_model(model)
    ds = _open_dataset(dataset)
    idx = _check_splits(ds, opts.split)
    clock = stopwatch or Stopwatch(verbose, prefix="evaluate")
    view, used = _cells_used(ds, idx, opts)
    if out is None:
        return run_parts(m, view, None if plot_dir is None else Path(plot_dir), opts, clock, used)
    inputs = [getattr(m, "name_or_path", None), ds.path]
    with atomic_dir(out, overwrite=overwrite, kind="evaluation", inputs=inputs) as tmp:
        res = run_parts(m, view, Path(tmp), opts, clock, used)
        write_outputs(res, Path(tmp))
    return res


def _open_dataset(dataset):
    """The c2s dataset, opened from its path if need be."""
    from c2s.io import as_dataset

    return as_dataset(dataset)


def _check_splits(ds, split: str) -> dict:
    """The dataset's row indices per split, refused unless it has cells in ``split`` and
    training cells for the baselines."""
    idx = ds.split_indices()
    if len(idx.get(split, [])) == 0:
        raise C2SError(
            f"The dataset has no {split!r} cells (splits: "
            f"{ {k: len(v) for k, v in idx.items()} }); pass split= one that has cells."
        )
    if len(idx.get("train", [])) == 0:
        raise C2SError("The dataset has no training cells to fit the baselines on.")
    return idx


def _cells_used(ds, idx: dict, o: EvalOptions):
    """The capped view of ``ds`` every part evaluates (a seeded sample, stratified by cell
    type) and, per split, how many of its ``idx`` cells it holds (for the report)."""
    caps = {s: o.max_cells for s in idx if s != "train"} | {"train": o.max_train_cells}
    view = ds.subsample(caps, seed=o.seed, stratify="cell_type")
    used = {s: f"{len(r):,} of {len(idx[s]):,}" for s, r in view.split_indices().items()}
    return view, used


def _tasks(m, o: EvalOptions) -> list[str]:
    """The tasks to score: the given ones, else the model's."""
    tasks = list(o.tasks or m.config.tasks or [])
    if not tasks:
        raise C2SError(
            "The model's c2s_config.json names no tasks (a released checkpoint?): pass tasks= "
            "(--tasks cell_type_prediction cell_type_generation), with n_genes= and organism=."
        )
    return tasks


def _header(m, ds, o: EvalOptions, tasks: list[str], used: dict) -> dict:
    """The result's description of what was evaluated, before any part runs."""
    return {
        "model": {
            "path": str(getattr(m, "name_or_path", "") or ""),
            "tasks": tasks,
            "n_genes": o.n_genes or m.config.n_genes,
            "architecture": m.model.config.model_type,
            "parameters": int(sum(p.numel() for p in m.model.parameters())),
        },
        "dataset": {"path": str(ds.path), "n_cells": ds.n_cells, "cells_used": used},
        "split": o.split,
        "skipped": {},
        "plots": {},
    }


def _label_tasks(model, tasks) -> list[str]:
    """The label tasks among ``tasks``, single-cell ones first; an unknown name is an
    error."""
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
        if task.answer == "label" and task.kind in ("single", "multi"):
            out.append((task.kind != "single", t))
    return [t for _, t in sorted(out, key=lambda x: x[0])]


def run_parts(
    m, ds, plot_dir: Path | None, o: EvalOptions, clock: Stopwatch, used: dict | None = None
) -> dict:
    """Every part of the evaluation, in order; plots go into ``plot_dir`` when given.
    ``used``: the cells of each split the (subsampled) dataset holds, for the report."""
    tasks = _tasks(m, o)
    label_tasks = _label_tasks(m, tasks)
    res = _header(m, ds, o, tasks, used or {})
    for i, t in enumerate(label_tasks if o.wants("annotation") else []):
        part = clock.run(f"annotation ({t})", lambda t=t: annotation(m, ds, t, o, plot_dir, res))
        if i == 0:
            res["annotation"] = part
        else:
            res.setdefault("other_label_tasks", {})[t] = part
    if "cell_type_generation" in tasks and o.wants("generation"):
        res["generation"] = clock.run("generation", lambda: generation(m, ds, o, plot_dir, res))
    if "perturbation_prediction" in tasks and o.wants("perturbation"):
        res["perturbation"] = clock.run(
            "perturbation", lambda: perturbation(m, ds, o, plot_dir, res)
        )
    if DESCRIPTION_TASK in tasks and o.wants("description"):
        res["description"] = clock.run("description", lambda: description(m, ds, o))
    scored = {*label_tasks, "cell_type_generation", "perturbation_prediction", DESCRIPTION_TASK}
    for t in tasks:
        if t not in scored:
            res["skipped"][t] = "not scored by c2s evaluate yet (use c2s.metrics directly)"
    if o.wants("embedding"):
        res["embedding"] = clock.run("embedding", lambda: embedding(m, ds, o, plot_dir, res))
    if o.wants("reconstruction"):
        res["reconstruction"] = clock.run(
            "reconstruction", lambda: reconstruction(ds, o.split, o.seed, plot_dir, res)
        )
    if plot_dir is not None and o.wants("loss"):
        loss_plot(m, plot_dir, res)
    res["timing_s"] = dict(clock.times)
    return res
