"""Plots of inference results: confusion matrices and embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from c2s.pl._figure import axes as _axes
from c2s.pl._figure import pyplot as _plt


def confusion_matrix(
    truth: Sequence,
    pred: Sequence,
    *,
    labels: Sequence[str] | None = None,
    ax=None,
    normalize: bool = True,
):
    """Rows: true labels, columns: predicted labels (row-normalized by default).

    Returns the matplotlib ``Axes``.
    """
    truth = np.asarray(truth, dtype=str)
    pred = np.asarray(pred, dtype=str)
    labels = list(labels) if labels is not None else sorted(set(truth) | set(pred))
    index = {lab: i for i, lab in enumerate(labels)}
    M = np.zeros((len(labels), len(labels)))
    for t, p in zip(truth, pred, strict=True):
        if t in index and p in index:
            M[index[t], index[p]] += 1
    if normalize:
        M = M / np.maximum(M.sum(1, keepdims=True), 1)
    size = 2.5 + 0.45 * len(labels)
    ax = _axes(ax, (size + 1, size))
    im = ax.imshow(M, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if M[i, j] > 0:
                txt = f"{M[i, j]:.2f}" if normalize else f"{int(M[i, j])}"
                ax.text(
                    j,
                    i,
                    txt,
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if M[i, j] > 0.5 else "black",
                )
    ax.figure.colorbar(im, ax=ax, fraction=0.046)
    return ax


def embedding(
    coords: np.ndarray,
    groups: Sequence,
    *,
    ax=None,
    title: str | None = None,
    markers: Sequence | None = None,
):
    """A 2-D scatter of ``coords`` coloured by ``groups`` (e.g. a UMAP of C2S embeddings);
    ``markers`` optionally splits points into kinds (e.g. real vs generated) drawn as
    circles and crosses."""
    plt = _plt()
    coords = np.asarray(coords)
    groups = np.asarray(groups, dtype=str)
    ax = _axes(ax, (6.5, 4.5))
    kinds = np.asarray(markers, dtype=str) if markers is not None else np.full(len(groups), "")
    cmap = plt.get_cmap("tab20")
    for gi, g in enumerate(sorted(set(groups))):
        for ki, k in enumerate(sorted(set(kinds))):
            sel = (groups == g) & (kinds == k)
            if sel.any():
                ax.scatter(
                    coords[sel, 0],
                    coords[sel, 1],
                    s=6 if ki == 0 else 14,
                    color=cmap(gi % 20),
                    marker="o" if ki == 0 else "x",
                    label=g if ki == 0 else None,
                    linewidths=0.8,
                )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or "")
    ax.legend(fontsize=6, markerscale=2, frameon=False, loc="center left", bbox_to_anchor=(1, 0.5))
    return ax
