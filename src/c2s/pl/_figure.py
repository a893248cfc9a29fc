"""matplotlib, loaded on first use, new axes, and saving figures to files."""

from __future__ import annotations

import os
from pathlib import Path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no screen needed)."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("Plots need matplotlib: pip install 'c2s[plot]'") from e
    return plt


def axes(ax, figsize: tuple[float, float]):
    """``ax`` itself, or the Axes of a new figure of ``figsize`` (inches) when it is None."""
    if ax is None:
        _, ax = pyplot().subplots(figsize=figsize)
    return ax


def save_figure(
    figure, path: str | os.PathLike, *, dpi: int = 120, tight_bbox: bool = False
) -> Path:
    """Save a figure (or the figure of an Axes) as ``path`` and close it.

    The layout is tightened first, or, with ``tight_bbox``, the saved area is cropped to the
    drawn content instead (for figures with legends outside the axes).
    """
    fig = getattr(figure, "figure", figure)
    if tight_bbox:
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    else:
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return Path(path)
