"""Plots of the rank -> expression fit and of reconstruction quality."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from c2s.pl._figure import axes as _axes
from c2s.pl._figure import pyplot as _plt
from c2s.pl._figure import save_figure
from c2s.sentences import CellSentences


def _sample(n: int, k: int, seed: int) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.random.default_rng(seed).choice(n, size=k, replace=False)


def inverse_fit(
    sentences: CellSentences, models: dict, *, ax=None, max_points: int = 200_000, seed: int = 0
):
    """Expression vs ``log10(1 + rank)`` (density) with each model's curve.

    Parameters
    ----------
    sentences
        Sentences with values.
    models
        ``{label: InverseModel}``; ``rank_mean`` curves are drawn for the shortest, median
        and longest sentence-length groups.

    Returns
    -------
    The matplotlib Axes.
    """
    ax = _axes(ax, (6, 4.5))
    x = np.log10(1.0 + sentences.positions)
    y = sentences.values
    idx = _sample(len(x), max_points, seed)
    ax.hexbin(x[idx], y[idx], gridsize=60, bins="log", cmap="Greys", mincnt=1)
    grid = np.linspace(0, x.max() if len(x) else 1, 200)
    pos = 10**grid - 1
    colors = iter(["tab:red", "tab:blue", "tab:green", "tab:orange"])
    for label, m in models.items():
        c = next(colors)
        if m.name == "rank_mean":
            lens = np.quantile(sentences.lengths, [0.1, 0.5, 0.9])
            for q, L in zip(("p10", "median", "p90"), lens, strict=True):
                ls = {"p10": ":", "median": "-", "p90": "--"}[q]
                ax.plot(
                    grid,
                    m.predict(pos, np.full_like(pos, L)),
                    color=c,
                    ls=ls,
                    label=f"{label} (length {q}: {L:.0f})",
                )
        else:
            ax.plot(grid, m.predict(pos), color=c, label=label)
    ax.set_xlabel("log10(1 + rank)")
    ax.set_ylabel("expression")
    ax.set_title("Expression vs rank")
    ax.legend(fontsize=7)
    return ax


def reconstruction(
    sentences: CellSentences,
    model,
    *,
    ax=None,
    max_points: int = 200_000,
    seed: int = 0,
    title: str | None = None,
):
    """Reconstructed vs original expression over expressed genes (density, with y = x).

    Returns
    -------
    The matplotlib Axes.
    """
    ax = _axes(ax, (4.5, 4.5))
    y = sentences.values
    pred = model.predict_sentences(sentences)
    idx = _sample(len(y), max_points, seed)
    ax.hexbin(y[idx], pred[idx], gridsize=60, bins="log", cmap="viridis", mincnt=1)
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], color="tab:red", lw=1)
    ax.set_xlabel("original expression")
    ax.set_ylabel("reconstructed expression")
    ax.set_title(title or f"Reconstruction ({model.name})")
    return ax


def inverse_plots(sentences: CellSentences, fit, plot_dir: str | os.PathLike) -> dict[str, str]:
    """The fit plot and one reconstruction panel per candidate model of an inverse fit
    (:func:`c2s.inverse.fit_inverse`), drawn on the held-out cells (those whose ``split`` is
    not ``"train"``, or all cells without a split column) and saved as PNG in ``plot_dir``.

    Returns
    -------
    ``{"inverse_fit": path, "reconstruction": path}``.
    """
    plt = _plt()
    plot_dir = Path(plot_dir)
    plot_dir.mkdir(parents=True, exist_ok=True)
    cs = sentences
    held = cs.take(cs.obs["split"].astype(str).to_numpy() != "train") if "split" in cs.obs else cs
    models = fit.candidates or {fit.selected: fit.model}
    p1 = save_figure(inverse_fit(held, models), plot_dir / "inverse_fit.png", tight_bbox=True)
    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 4.3), squeeze=False)
    for a, (name, m) in zip(axes[0], models.items(), strict=True):
        r2 = fit.metrics[name]["r2"]
        reconstruction(held, m, ax=a, title=f"{name}: held-out R^2 {r2:.3f}")
    p2 = save_figure(fig, plot_dir / "reconstruction.png", tight_bbox=True)
    return {"inverse_fit": str(p1), "reconstruction": str(p2)}
