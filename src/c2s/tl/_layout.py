"""``layout_2d``: two coordinates per cell from its embedding, for a map of the cells (the
server's page and the evaluation's plots)."""

from __future__ import annotations

import numpy as np

MIN_UMAP_CELLS = 20  # fewer cells: the first two principal components
EXACT_NEIGHBOURS_BELOW = 4096  # umap-learn's own switch to approximate neighbours


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
            k = min(15, len(Y) - 1)
            # umap-learn finds neighbours exactly below 4,096 cells and by NN-descent above (a
            # numba compile of half a minute); above, exact neighbours from scikit-learn
            knn = {}
            if len(Y) >= EXACT_NEIGHBOURS_BELOW:
                knn["precomputed_knn"] = _exact_neighbours(Y, k)
            reducer = umap.UMAP(n_neighbors=k, random_state=seed, n_jobs=1, **knn)
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


def _exact_neighbours(Y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, None]:
    """Each row's ``k`` nearest rows (itself first) and their distances, as umap-learn's
    ``precomputed_knn`` takes them."""
    from sklearn.neighbors import NearestNeighbors

    dist, idx = NearestNeighbors(n_neighbors=k).fit(Y).kneighbors(Y)
    return idx, dist, None


__all__ = ["layout_2d"]
