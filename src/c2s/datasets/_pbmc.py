"""The small PBMC data bundled with scanpy, prepared for cell sentences."""

from __future__ import annotations


def pbmc68k_reduced():
    """scanpy's bundled 700-cell PBMC subset (10 cell types), log-normalized values in ``X``.

    ``X`` is taken from the file's ``.raw`` (the scaled ``X`` of the original cannot be
    ranked); ``obs["cell_type"]`` is a copy of ``bulk_labels`` and ``obs["organism"]`` is
    ``"Homo sapiens"``. Needs scanpy (``pip install 'c2s[scanpy]'``); nothing is downloaded.

    Returns
    -------
    AnnData with 700 cells x 765 genes.
    """
    try:
        import scanpy as sc
    except ImportError as e:
        raise ImportError(
            "The bundled PBMC data comes with scanpy: pip install 'c2s[scanpy]'"
        ) from e
    import anndata as ad

    src = sc.datasets.pbmc68k_reduced()
    obs = src.obs[["bulk_labels", "louvain", "phase", "n_counts"]].copy()
    obs["cell_type"] = obs["bulk_labels"].astype(str).astype("category")
    obs["organism"] = "Homo sapiens"
    obs["tissue"] = "blood"
    adata = ad.AnnData(X=src.raw.X.copy(), obs=obs, var=src.raw.var[[]].copy())
    adata.obsm["X_umap"] = src.obsm["X_umap"]
    return adata
