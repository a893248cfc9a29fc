"""A linear probe: multinomial logistic regression on a model's cell embeddings.

Fitted on the training cells' embeddings (standardized per dimension, L2-regularized, full
batch L-BFGS in torch) and kept in ``c2s_config.json``, so a saved model predicts with it
after loading (``c2s.tl.predict(mode="probe")``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from c2s._errors import C2SError
from c2s.model._calibrate import softmax


def fit_probe(
    X: np.ndarray,
    y: Sequence[str],
    labels: Sequence[str],
    *,
    l2: float = 1.0,
    max_iter: int = 500,
) -> dict:
    """Fit the probe; returns its parameters as a plain dict (JSON-ready).

    ``l2`` is the penalty on the weights, as ``0.5 * l2 * |W|^2`` added to the summed
    log-loss (scikit-learn's ``C`` is ``1 / l2``). Cells whose label is not in ``labels``
    are left out.
    """
    import torch

    X = np.asarray(X, dtype=np.float64)
    labels = [str(x) for x in labels]
    index = {lab: j for j, lab in enumerate(labels)}
    target = np.array([index.get(str(v), -1) for v in y])
    keep = target >= 0
    if keep.sum() < 2 or len(labels) < 2:
        raise C2SError("A probe needs at least two labelled cells and two labels.")
    mean = X[keep].mean(0)
    scale = X[keep].std(0)
    scale[scale == 0] = 1.0
    Z = torch.from_numpy((X[keep] - mean) / scale)
    t = torch.from_numpy(target[keep])
    W = torch.zeros((Z.shape[1], len(labels)), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(len(labels), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(Z @ W + b, t, reduction="sum")
        loss = loss + 0.5 * l2 * (W**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        train_acc = float(((Z @ W + b).argmax(1) == t).double().mean())
    return {
        "labels": labels,
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "coef": W.detach().numpy().tolist(),
        "intercept": b.detach().numpy().tolist(),
        "l2": l2,
        "n_train": int(keep.sum()),
        "train_accuracy": train_acc,
    }


def probe_probabilities(probe: dict, X: np.ndarray) -> np.ndarray:
    """Label probabilities (cells x ``probe["labels"]``) for embeddings ``X``."""
    X = np.asarray(X, dtype=np.float64)
    mean, scale = np.asarray(probe["mean"]), np.asarray(probe["scale"])
    if X.shape[1] != len(mean):
        raise C2SError(
            f"The probe was fitted on {len(mean)}-dimensional embeddings, not {X.shape[1]}."
        )
    return softmax(
        ((X - mean) / scale) @ np.asarray(probe["coef"]) + np.asarray(probe["intercept"])
    )
