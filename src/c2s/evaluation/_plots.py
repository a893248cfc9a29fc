"""Figures of an evaluation: UMAPs and the training loss curve."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def umap(X, seed: int) -> np.ndarray:
    """The 2-D map of the embeddings: :func:`c2s.tl.layout_2d` (the server's page draws the
    same)."""
    from c2s.tl import layout_2d

    return layout_2d(X, seed=seed)[0]


MAX_PLOTTED = 10_000  # a UMAP of more cells takes long and shows no more


def umap_plot(X, groups, seed, path, markers=None, title="UMAP of C2S embeddings (all cells)"):
    from c2s.pl import embedding, save_figure

    X, groups = np.asarray(X), np.asarray(groups)
    n = len(X)
    if n > MAX_PLOTTED:  # a seeded sample, said in the title
        keep = np.sort(np.random.default_rng(seed).choice(n, MAX_PLOTTED, replace=False))
        X, groups = X[keep], groups[keep]
        markers = None if markers is None else [markers[i] for i in keep]
        title = f"{title}: {MAX_PLOTTED:,} of {n:,} cells drawn"
    ax = embedding(umap(X, seed), groups, markers=markers, title=title)
    save_figure(ax, path)


def loss_plot(m, plot_dir, res):
    path = Path(str(getattr(m, "name_or_path", "") or "")) / "train_log.json"
    if not path.is_file():
        return
    from c2s.pl import loss_curve, save_figure

    log = json.loads(path.read_text())
    ax = loss_curve(log.get("log_history", []), title="training")
    save_figure(ax, plot_dir / "loss_curve.png")
    res["plots"]["loss_curve"] = "loss_curve.png"
