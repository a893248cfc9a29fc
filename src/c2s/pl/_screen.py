"""The virtual screen's scatter: each perturbation's effect in one context against another."""

from __future__ import annotations

import numpy as np

from c2s._errors import C2SError
from c2s.pl._figure import pyplot


def screen_scatter(table, contexts, *, top: int = 8, ax=None, title: str | None = None):
    """Effect in ``contexts[0]`` (x) against ``contexts[1]`` (y), one point per perturbation,
    the ``top`` largest context splits labelled; the diagonal marks equal effects. ``table``
    is :func:`c2s.tl.screen`'s result."""
    a, b = (f"effect_{c}" for c in contexts[:2])
    if a not in table or b not in table:
        raise C2SError(f"The table has no {a!r} / {b!r} columns; pass the screen's contexts.")
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5))
    x, y = table[a].to_numpy(float), table[b].to_numpy(float)
    ax.scatter(x, y, s=14, color="0.45")
    lo, hi = float(np.nanmin([x.min(), y.min()])), float(np.nanmax([x.max(), y.max()]))
    ax.plot([lo, hi], [lo, hi], color="0.75", lw=1, ls="--")
    ax.axhline(0, color="0.85", lw=0.8)
    ax.axvline(0, color="0.85", lw=0.8)
    hits = table.sort_values("split", ascending=False).head(top)
    ax.scatter(hits[a], hits[b], s=22, color="tab:red")
    for name, row in hits.iterrows():
        ax.annotate(
            str(name), (row[a], row[b]), fontsize=8, xytext=(3, 3), textcoords="offset points"
        )
    ax.set_xlabel(f"programme change in {contexts[0]}")
    ax.set_ylabel(f"programme change in {contexts[1]}")
    ax.set_title(title or f"virtual screen: top {len(hits)} by context split in red")
    return ax


__all__ = ["screen_scatter"]
