"""Plots of the rank -> expression fit and of reconstruction quality."""

from __future__ import annotations

import numpy as np

from c2s.sentences import CellSentences


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("Plots need matplotlib: pip install 'c2s[plot]'") from e
    return plt


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
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.5))
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
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
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
