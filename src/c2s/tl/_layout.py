"""``layout_2d``: two coordinates per cell from its embedding, for a map of the cells (the
server's page and the evaluation's plots)."""

from __future__ import annotations

import numpy as np

MIN_UMAP_CELLS = 20  # fewer cells: the first two principal components


def layout_2d(X, seed: int = 0) -> tuple[np.ndarray, str]:
    """2-D coordinates of the embeddings ``X`` (cells x dimensions; NaN rows stay NaN) and the
    method used: ``"umap"`` (umap-learn, 15 neighbours or fewer, ``seed``) when it is
    installed and at least 20 cells have an embedding, else ``"pca"`` (the first two
    principal components), or ``"none"`` when no cell has one."""
    X = np.asarray(X)
    coords = np.full((len(X), 2), np.nan)
    ok = ~np.isnan(X).any(axis=1)
    Y = X[ok].astype(np.float64)
    if len(Y) == 0:
        return coords, "none"
    if len(Y) >= MIN_UMAP_CELLS:
        try:
            import umap
        except ImportError:
            umap = None
        if umap is not None:
            reducer = umap.UMAP(n_neighbors=min(15, len(Y) - 1), random_state=seed, n_jobs=1)
            coords[ok] = reducer.fit_transform(Y)
            return coords, "umap"
    Y = Y - Y.mean(axis=0)
    if len(Y) > 1:
        u, s, _ = np.linalg.svd(Y, full_matrices=False)
        pcs = u[:, :2] * s[:2]
        coords[ok, : pcs.shape[1]] = pcs
        coords[ok, pcs.shape[1] :] = 0.0
    else:
        coords[ok] = 0.0
    return coords, "pca"


__all__ = ["layout_2d"]
