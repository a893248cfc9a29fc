"""Figures of an evaluation: UMAPs and the training loss curve."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

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
    from c2s.tl import layout_2d  # the map the server's page draws too

    coords, method = layout_2d(X, seed=seed)
    if method != "umap":  # umap-learn missing, or fewer than 20 cells
        title = title.replace("UMAP", "PCA")
    ax = embedding(coords, groups, markers=markers, title=title)
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
