"""Annotation metrics: how well predicted labels agree with true ones.

All take two sequences of labels (anything that compares equal as strings) and an optional
``labels`` list fixing which classes exist and in what order; a class in ``labels`` that
never occurs in either sequence is left out of the macro averages.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from c2s._errors import C2SError


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray([str(x) for x in y_true], dtype=object)
    p = np.asarray([str(x) for x in y_pred], dtype=object)
    if len(t) != len(p):
        raise C2SError(f"{len(t)} true labels but {len(p)} predictions; they must pair up.")
    if len(t) == 0:
        raise C2SError("No labels to score.")
    return t, p


def _classes(t, p, labels) -> list[str]:
    if labels is not None:
        return [str(x) for x in labels]
    return sorted(set(t) | set(p))


def confusion_matrix(y_true, y_pred, labels: Sequence[str] | None = None):
    """Counts with true labels as rows and predictions as columns (a DataFrame).

    Predictions outside ``labels`` are counted in an extra ``"(other)"`` column.
    """
    import pandas as pd

    t, p = _pair(y_true, y_pred)
    classes = _classes(t, p, labels)
    index = {c: i for i, c in enumerate(classes)}
    other = any(x not in index for x in p)
    cols = classes + (["(other)"] if other else [])
    m = np.zeros((len(classes), len(cols)), dtype=np.int64)
    for a, b in zip(t, p, strict=True):
        if a in index:
            m[index[a], index.get(b, len(classes))] += 1
    return pd.DataFrame(
        m, index=pd.Index(classes, name="true"), columns=pd.Index(cols, name="predicted")
    )


def classification_report(y_true, y_pred, labels: Sequence[str] | None = None):
    """Per-class precision, recall, F1 and support (true count), as a DataFrame.

    precision = TP / (TP + FP), recall = TP / (TP + FN), F1 their harmonic mean; a ratio with
    a zero denominator is 0.
    """
    import pandas as pd

    t, p = _pair(y_true, y_pred)
    rows = []
    for c in _classes(t, p, labels):
        tp = int(np.sum((t == c) & (p == c)))
        fp = int(np.sum((t != c) & (p == c)))
        fn = int(np.sum((t == c) & (p != c)))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        rows.append((c, prec, rec, f1, tp + fn, tp + fp))
    return pd.DataFrame(
        rows, columns=["label", "precision", "recall", "f1", "support", "predicted"]
    ).set_index("label")


def accuracy(y_true, y_pred) -> float:
    """Fraction of exact matches."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def macro_f1(y_true, y_pred, labels: Sequence[str] | None = None) -> float:
    """Unweighted mean of the per-class F1 over classes that are true or predicted at least once."""
    rep = classification_report(y_true, y_pred, labels)
    rep = rep[(rep["support"] > 0) | (rep["predicted"] > 0)]
    return float(rep["f1"].mean())


def balanced_accuracy(y_true, y_pred) -> float:
    """Mean recall over the classes present in ``y_true``."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean([np.mean(p[t == c] == c) for c in np.unique(t)]))


def annotation_metrics(y_true, y_pred, labels: Sequence[str] | None = None) -> dict:
    """accuracy, macro_f1, balanced_accuracy, n and a per-class report (plain dicts)."""
    rep = classification_report(y_true, y_pred, labels)
    return {
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred, labels),
        "balanced_accuracy": balanced_accuracy(y_true, y_pred),
        "n": len(y_true),
        "per_class": {
            str(k): {
                c: (int(v) if c in ("support", "predicted") else float(v)) for c, v in r.items()
            }
            for k, r in rep.iterrows()
        },
    }


def bootstrap_intervals(
    y_true,
    y_pred,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of accuracy and macro-F1: cells resampled with
    replacement ``n_boot`` times (seeded), each metric computed as :func:`accuracy` and
    :func:`macro_f1` define it.

    With a small test set one cell moves accuracy by a visible step (1/69 = 1.4 points on the
    PBMC test split); the interval says how far a number can be trusted.

    Returns
    -------
    ``{"accuracy": (low, high), "macro_f1": (low, high)}``.
    """
    t, p = _pair(y_true, y_pred)
    if len(t) == 0:
        raise C2SError("No cells to bootstrap.")
    classes = sorted(set(t) | set(p))
    code = {c: i for i, c in enumerate(classes)}
    ti = np.fromiter((code[x] for x in t), dtype=np.int64, count=len(t))
    pi = np.fromiter((code[x] for x in p), dtype=np.int64, count=len(p))
    k = len(classes)
    rng = np.random.default_rng(seed)
    acc, f1 = np.empty(n_boot), np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, len(t), len(t))
        tb, pb = ti[idx], pi[idx]
        acc[b] = np.mean(tb == pb)
        tp = np.bincount(tb[tb == pb], minlength=k).astype(np.float64)
        support, predicted = np.bincount(tb, minlength=k), np.bincount(pb, minlength=k)
        prec = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
        rec = np.divide(tp, support, out=np.zeros(k), where=support > 0)
        f = np.divide(2 * prec * rec, prec + rec, out=np.zeros(k), where=prec + rec > 0)
        present = (support > 0) | (predicted > 0)
        f1[b] = f[present].mean()
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    return {
        "accuracy": tuple(float(x) for x in np.percentile(acc, q)),
        "macro_f1": tuple(float(x) for x in np.percentile(f1, q)),
    }
