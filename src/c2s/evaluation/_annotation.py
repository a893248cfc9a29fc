"""Annotation: the model's label predictions on held-out cells next to logistic regression
and k-NN on PCA, both fit on the training cells' stored expression."""

from __future__ import annotations

import time

from c2s._errors import C2SError
from c2s.evaluation._options import EvalOptions

# label-scoring variants reported side by side: (key in metrics.json, predict options)
SCORING = (
    ("c2s", {}),
    ("c2s_content_free", {"calibration": "content_free"}),
    ("c2s_validation_calibrated", {"calibration": "validation"}),
    ("c2s_length_norm", {"length_norm": True}),
)


def annotation(m, ds, task, o: EvalOptions, plot_dir, res) -> dict:
    """Every way the model labels ``task``'s held-out cells (label scoring raw and
    calibrated, the probe) next to the baselines. A multi-cell task (e.g. tissue from a group
    of cells) is prompted with groups of cells that share the label, each cell scored with
    its group's answer; the baselines label cells one by one."""
    from c2s.baselines import expression, knn_pca, logistic_regression
    from c2s.prompts import Renderer
    from c2s.tl import predict

    t_obj = Renderer(task, profile=m.config.profile).task
    key, multi = t_obj.label, t_obj.kind == "multi"
    if key not in ds.obs_columns:
        raise C2SError(f"The dataset has no {key!r} column for task {task!r}.")
    split = o.split
    truth_of = ds.obs([key])[key].astype(str)  # read once; indexed by each result's cells
    labels = list(m.config.labels.get(key, [])) or sorted(
        truth_of.iloc[ds.split_indices()["train"]].unique()
    )
    out = {"task": task, "label": key, "labels": labels, "multi_cell": multi}
    cal = m.config.calibration
    first = None
    for name, kw in SCORING:
        if multi and name != "c2s":
            continue  # calibrations are single-cell options
        if name == "c2s_validation_calibrated" and not (cal and cal.get("task") == task):
            continue
        if multi:
            kw = {"group_by": [key]}
        t = time.perf_counter()
        result = predict(
            ds, m, task=task, split=split, labels=labels, inplace=False, **kw, **o.verb_kw()
        )
        seconds = time.perf_counter() - t
        truth = truth_of.loc[result.index].to_numpy()
        pred = _texts(result.labels)
        out[name] = {**_scores(truth, pred, labels, o.seed), "seconds": seconds}
        if first is None:
            first = (result.to_frame(), truth, pred)
            out[name]["cells_per_s"] = len(pred) / seconds
    probe = m.config.probe
    if probe and probe.get("task") == task:
        t = time.perf_counter()
        pf = predict(ds, m, task=task, split=split, mode="probe", inplace=False, **o.verb_kw())
        truth = truth_of.loc[pf.index].to_numpy()
        pp = _texts(pf.labels)
        out["c2s_probe"] = {
            **_scores(truth, pp, labels, o.seed),
            "seconds": time.perf_counter() - t,
        }
    Xtr, obs_tr = expression(ds, split="train")
    Xte, obs_te = expression(ds, split=split)
    ytr = obs_tr[key].astype(str).to_numpy()
    yte = obs_te[key].astype(str).to_numpy()
    for name, fn in (("logistic_regression", logistic_regression), ("knn_pca", knn_pca)):
        t = time.perf_counter()
        p = fn(Xtr, ytr, Xte)
        out[name] = {**_scores(yte, p, labels, o.seed), "seconds": time.perf_counter() - t}
    out["n_train"], out["n_eval"] = len(ytr), len(yte)
    if plot_dir is not None and res.get("annotation") is None:  # the first label task's
        frame, truth, pred = first
        frame.to_csv(plot_dir / "predictions.csv", index_label="cell_id")
        confusion_plots(truth, pred, out, labels, plot_dir, res)
    return out


def _texts(labels):
    """The predicted labels as text (a cell with no prediction reads "nan")."""
    return labels.astype(str).astype(object)


def _scores(truth, pred, labels, seed) -> dict:
    from c2s.metrics import annotation_metrics, bootstrap_intervals

    return {
        **annotation_metrics(truth, pred, labels or None),
        "ci95": bootstrap_intervals(truth, pred, seed=seed),
    }


def confusion_plots(truth, pred, out, labels, plot_dir, res):
    from c2s.pl import confusion_matrix, save_figure

    ax = confusion_matrix(truth, pred, labels=labels or None)
    ax.set_title(f"C2S on held-out cells: accuracy {out['c2s']['accuracy']:.3f}")
    save_figure(ax, plot_dir / "confusion_matrix.png")
    res["plots"]["confusion_matrix"] = "confusion_matrix.png"
