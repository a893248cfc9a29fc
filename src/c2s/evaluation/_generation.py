"""Generation: cells generated per label next to the class-mean cell and resampled real
training cells, every side compared with the held-out cells in the same form (top-n genes,
expression from the dataset's inverse transform)."""

from __future__ import annotations

import time

import numpy as np

from c2s._errors import C2SError
from c2s.evaluation._options import EvalOptions
from c2s.evaluation._plots import umap_plot


def compared_in(m, ds, o: EvalOptions, missing: str):
    """The form cells are compared in: the inverse transform that turns sentences into
    expression (the dataset's, else the model's; ``missing`` is the error without one) and
    the genes kept per cell (the evaluation's, else the model's, else 100)."""
    from c2s.inverse import load_inverse

    inv_spec = ds.meta.get("inverse") or m.config.inverse
    if inv_spec is None:
        raise C2SError(missing)
    return load_inverse(inv_spec), int(o.n_genes or m.config.n_genes or 100)


def top_n_expression(ds, split, n, inv):
    """The expression of ``split``'s cells from their top ``n`` genes, and their sentences."""
    from c2s.inverse import reconstruct

    cs = ds.sentences(split=split, n_genes=n, values=False)
    return reconstruct(cs, inv).X, cs


def sentence_expression(cells, vocab, inv):
    """The expression of cells a model wrote (an AnnData with ``c2s_sentence``), genes
    outside ``vocab`` dropped."""
    from c2s.inverse import reconstruct
    from c2s.sentences import CellSentences

    sentences = cells.obs["c2s_sentence"].astype(str).tolist()
    return reconstruct(CellSentences.from_text(sentences, vocab, on_unknown="drop"), inv).X


def generation(m, ds, o: EvalOptions, plot_dir, res) -> dict:
    from c2s.baselines import class_mean_cells, resampled_cells
    from c2s.metrics import gene_uniqueness, gene_validity, generation_metrics, top_gene_overlap
    from c2s.tl import generate

    key = "cell_type"
    inv, n = compared_in(
        m,
        ds,
        o,
        "Generation is compared on expression, which needs an inverse transform: fit one "
        "with `c2s inverse fit DATASET` first.",
    )
    split, seed = o.split, o.seed
    real_X, real_cs = top_n_expression(ds, split, n, inv)
    train_X, train_cs = top_n_expression(ds, "train", n, inv)
    y_real = real_cs.obs[key].astype(str).to_numpy()
    y_train = train_cs.obs[key].astype(str).to_numpy()
    known = set(m.config.labels.get(key, [])) or set(y_train)
    keep = np.isin(y_real, sorted(known))
    real_X, y_real = real_X[keep], y_real[keep]
    counts = {lab: int(c) for lab, c in zip(*np.unique(y_real, return_counts=True), strict=True)}
    t = time.perf_counter()
    genes = None if m.config.genes else ds.vocab.display_names.tolist()
    kw = {**o.verb_kw(), **o.sampling_kw(), "n_genes": n}
    gen = generate(m, counts, seed=seed, inverse=inv, genes=genes, **kw)
    gen_s = time.perf_counter() - t
    y_gen = gen.obs[key].astype(str).to_numpy()
    sents = gen.obs["c2s_sentence"].astype(str).tolist()
    gen_X = sentence_expression(gen, ds.vocab, inv)
    real_sents = real_cs.to_text()
    real_sents = [s for s, k in zip(real_sents, keep, strict=True) if k]
    out = {
        "n_genes": n,
        "n_cells": len(y_gen),
        "per_label": counts,
        "representation": f"top {n} genes, expression from the dataset's inverse transform",
    }
    # one draw of training rows, used for both the cells and their sentences
    drawn = resampled_cells(np.arange(len(y_train))[:, None], y_train, y_gen, seed=seed)
    drawn = drawn[:, 0].astype(np.int64)
    sides = {
        "c2s": gen_X,
        "class_mean": class_mean_cells(train_X, y_train, y_gen),
        "resampled_real": train_X[drawn],
    }
    for name, X in sides.items():
        out[name] = generation_metrics(real_X, y_real, X, y_gen, seed=seed)
    out["c2s"].update(
        {
            "valid_gene_rate": gene_validity(sents, ds.vocab.display_names),
            "unique_gene_rate": gene_uniqueness(sents),
            "top_gene_overlap": top_gene_overlap(sents, y_gen, real_sents, y_real, n_top=n)["mean"],
            "seconds": gen_s,
            "cells_per_s": len(y_gen) / gen_s,
        }
    )
    u = gen.uns["c2s_generate"]
    out["c2s"]["sampling"] = {k: u[k] for k in ("temperature", "top_k", "top_p")}
    if o.model_frechet:
        model_frechet(m, ds, gen, keep, drawn, o, out)
    train_sents = train_cs.to_text()
    out["resampled_real"]["top_gene_overlap"] = top_gene_overlap(
        [train_sents[i] for i in drawn], y_gen, real_sents, y_real, n_top=n
    )["mean"]
    if plot_dir is not None:
        from c2s.io import write_h5ad

        write_h5ad(gen, plot_dir / "generated.h5ad")
        generation_plot(real_X, y_real, gen_X, y_gen, seed, plot_dir, res)
    return out


def model_frechet(m, ds, gen, keep, drawn, o: EvalOptions, out: dict) -> None:
    """The Frechet distance to the held-out cells in the model's embedding space, for the
    generated cells and the resampled real training cells."""
    from c2s.metrics import as_matrix, scfid
    from c2s.tl import embed

    kw = o.verb_kw()
    real = embed(ds, m, split=o.split, inplace=False, **kw).to_numpy()[keep]
    gen_E = embed(gen, m, inplace=False, **kw).to_numpy()
    train_E = embed(ds, m, split="train", inplace=False, **kw).to_numpy()[drawn]
    out["c2s"]["frechet_model"] = scfid(real, gen_E, embed=as_matrix)
    out["resampled_real"]["frechet_model"] = scfid(real, train_E, embed=as_matrix)


def generation_plot(real_X, y_real, gen_X, y_gen, seed, plot_dir, res):
    from c2s.metrics import pca_space

    f = pca_space(real_X, 30, seed)
    umap_plot(
        np.vstack([f(real_X), f(gen_X)]),
        np.concatenate([y_real, y_gen]),
        seed,
        plot_dir / "umap_generated.png",
        markers=["real (held-out)"] * len(y_real) + ["generated"] * len(y_gen),
        title="UMAP: generated cells (dots) and held-out real cells (crosses)",
    )
    res["plots"]["umap_generated"] = "umap_generated.png"
