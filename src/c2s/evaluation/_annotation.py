"""Annotation: the model's label predictions on held-out cells next to logistic regression
and k-NN on PCA, both fit on the training cells' stored expression."""

from __future__ import annotations

import time

from c2s._errors import C2SError
from c2s.evaluation._options import EvalOptions


def annotation(m, ds, task, o: EvalOptions, plot_dir, res) -> dict:
    from c2s.baselines import expression, knn_pca, logistic_regression
    from c2s.metrics import annotation_metrics, bootstrap_intervals
    from c2s.prompts import Renderer
    from c2s.tl import predict

    key = Renderer(task, profile=m.config.profile).task.label
    if key not in ds.obs_columns:
        raise C2SError(f"The dataset has no {key!r} column for task {task!r}.")
    split = o.split
    labels = list(m.config.labels.get(key, [])) or sorted(
        ds.obs([key]).iloc[ds.split_indices()["train"]][key].astype(str).unique()
    )
    t = time.perf_counter()
    frame = predict(ds, m, task=task, split=split, labels=labels, inplace=False, **o.verb_kw())
    pred_s = time.perf_counter() - t
    truth = ds.obs([key]).loc[frame.index, key].astype(str).to_numpy()
    pred = frame["c2s_prediction"].astype(str).to_numpy()
    out = {"task": task, "label": key, "labels": labels}
    out["c2s"] = {
        **annotation_metrics(truth, pred, labels or None),
        "ci95": bootstrap_intervals(truth, pred, seed=o.seed),
        "seconds": pred_s,
        "cells_per_s": len(pred) / pred_s,
    }
    probe = m.config.probe
    if probe and probe.get("task") == task:
        t = time.perf_counter()
        pf = predict(ds, m, task=task, split=split, mode="probe", inplace=False, **o.verb_kw())
        pp = pf["c2s_prediction"].astype(str).to_numpy()
        out["c2s_probe"] = {
            **annotation_metrics(truth, pp, labels or None),
            "ci95": bootstrap_intervals(truth, pp, seed=o.seed),
            "seconds": time.perf_counter() - t,
        }
    Xtr, obs_tr = expression(ds, split="train")
    Xte, obs_te = expression(ds, split=split)
    ytr = obs_tr[key].astype(str).to_numpy()
    yte = obs_te[key].astype(str).to_numpy()
    for name, fn in (("logistic_regression", logistic_regression), ("knn_pca", knn_pca)):
        t = time.perf_counter()
        p = fn(Xtr, ytr, Xte)
        out[name] = {
            **annotation_metrics(yte, p, labels or None),
            "ci95": bootstrap_intervals(yte, p, seed=o.seed),
            "seconds": time.perf_counter() - t,
        }
    out["n_train"], out["n_eval"] = len(ytr), len(yte)
    if plot_dir is not None:
        frame.to_csv(plot_dir / "predictions.csv", index_label="cell_id")
        confusion_plots(truth, pred, out, labels, plot_dir, res)
    return out


def confusion_plots(truth, pred, out, labels, plot_dir, res):
    from c2s.pl import confusion_matrix, save_figure

    ax = confusion_matrix(truth, pred, labels=labels or None)
    ax.set_title(f"C2S on held-out cells: accuracy {out['c2s']['accuracy']:.3f}")
    save_figure(ax, plot_dir / "confusion_matrix.png")
    res["plots"]["confusion_matrix"] = "confusion_matrix.png"
