"""Embeddings (k-NN accuracy of held-out cells among the training cells' embeddings) and the
inverse transform's reconstruction of the held-out cells."""

from __future__ import annotations

import numpy as np

from c2s.evaluation._options import EvalOptions
from c2s.evaluation._plots import umap_plot

KNN_K = 10  # the k reported in headline tables (all of metrics.KS are in metrics.json)


def embedding(m, ds, o: EvalOptions, plot_dir, res) -> dict:
    from sklearn.neighbors import KNeighborsClassifier

    from c2s.tl import embed

    key = "cell_type"
    split, seed = o.split, o.seed
    E = embed(ds, m, inplace=False, **o.verb_kw())
    out = {"dimensions": int(E.X.shape[1]), "n_cells": int(E.X.shape[0])}
    if key in ds.obs_columns:
        obs = ds.obs([key, "split"]).loc[E.index]
        tr = (obs["split"].astype(str) == "train").to_numpy()
        te = (obs["split"].astype(str) == split).to_numpy()
        y = obs[key].astype(str).to_numpy()
        X = E.to_numpy()
        clf = KNeighborsClassifier(n_neighbors=min(KNN_K, int(tr.sum()))).fit(X[tr], y[tr])
        out[f"knn{KNN_K}_accuracy"] = float(np.mean(clf.predict(X[te]) == y[te]))
        if plot_dir is not None:
            umap_plot(X, y, seed, plot_dir / "umap_embeddings.png")
            res["plots"]["umap_embeddings"] = "umap_embeddings.png"
    return out


def reconstruction(ds, split, seed, plot_dir, res) -> dict:
    from c2s.inverse import evaluate as inverse_eval
    from c2s.inverse import load_inverse

    spec = ds.meta.get("inverse")
    if spec is None or not ds.has_values:
        return {"skipped": "the dataset has no fitted inverse transform or no stored values"}
    inv = load_inverse(spec)
    cs = ds.sentences(split=split)
    out = {"model": spec.get("selected", type(inv).__name__), **inverse_eval(inv, cs, seed=seed)}
    if plot_dir is not None:
        from c2s import pl

        ax = pl.reconstruction(cs, inv, title=f"held-out cells: R^2 {out['r2']:.3f}")
        pl.save_figure(ax, plot_dir / "reconstruction_heldout.png", tight_bbox=True)
        res["plots"]["reconstruction_heldout"] = "reconstruction_heldout.png"
    return out
