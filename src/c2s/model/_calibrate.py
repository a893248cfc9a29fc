"""Calibrated label scores.

Label scoring takes the candidate with the highest log-likelihood. A model can prefer some
answers whatever the cell (a frequent label, a short one), so two corrections are offered:

- ``"content_free"``: subtract each label's log-likelihood after the same prompt with the
  cell sentence left empty (what the model says when it is shown no cell);
- ``"validation"``: add a per-label bias fitted on held-out cells (multinomial logistic
  regression with the scores as fixed logits and one free intercept per label), fitted once
  after training on the validation split and kept in ``c2s_config.json``.

Length normalization (the mean log-probability per answer token instead of the sum) is an
independent option of :func:`~c2s.model.score_answers` (``per_token=True``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from c2s._errors import C2SError

CALIBRATIONS = ("none", "content_free", "validation")


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a (cells x labels) score matrix."""
    z = np.asarray(scores, dtype=np.float64)
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


def fit_label_bias(
    scores: np.ndarray, y: Sequence[str], labels: Sequence[str], *, l2: float = 1.0
) -> dict:
    """Per-label biases ``b`` that maximize the held-out cells' log-likelihood of their true
    label under ``softmax(scores + b)``, with ``0.5 * l2 * |b|^2`` added to the summed
    log-loss (so a label that no held-out cell carries keeps a bias near 0).

    ``scores``: (cells x labels) log-likelihoods; ``y``: each cell's label (cells whose label
    is not in ``labels`` are left out). Returns a JSON-ready dict.
    """
    from scipy.optimize import minimize

    S = np.asarray(scores, dtype=np.float64)
    labels = [str(x) for x in labels]
    if S.ndim != 2 or S.shape[1] != len(labels):
        raise C2SError(f"Need a cells x {len(labels)} score matrix, not {S.shape}.")
    index = {lab: j for j, lab in enumerate(labels)}
    t = np.array([index.get(str(v), -1) for v in y])
    keep = t >= 0
    if keep.sum() < 1:
        raise C2SError("No held-out cell carries one of the candidate labels; cannot calibrate.")
    S, t = S[keep], t[keep]
    onehot = np.zeros_like(S)
    onehot[np.arange(len(t)), t] = 1.0

    def loss(b):
        z = S + b
        m = z.max(1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(z - m).sum(1))
        value = (lse - z[np.arange(len(t)), t]).sum() + 0.5 * l2 * (b @ b)
        grad = (softmax(z) - onehot).sum(0) + l2 * b
        return value, grad

    res = minimize(loss, np.zeros(len(labels)), jac=True, method="L-BFGS-B")
    bias = res.x - res.x.mean()  # softmax is shift-invariant; centre for readability
    before = float((S.argmax(1) == t).mean())
    after = float(((S + bias).argmax(1) == t).mean())
    return {
        "labels": labels,
        "bias": bias.tolist(),
        "l2": l2,
        "n_cells": len(t),
        "accuracy_before": before,
        "accuracy_after": after,
    }


def label_bias(calibration: dict, labels: Sequence[str]) -> np.ndarray:
    """The fitted biases in the order of ``labels``; a label the fit never saw is an error."""
    known = dict(zip(calibration["labels"], calibration["bias"], strict=True))
    missing = [x for x in labels if x not in known]
    if missing:
        raise C2SError(
            f"The model's validation calibration knows no label(s) {missing} (it was fitted "
            f"on {calibration['labels']}); use calibration='none' or 'content_free'."
        )
    return np.array([known[x] for x in labels])


__all__ = ["CALIBRATIONS", "fit_label_bias", "label_bias", "softmax"]
