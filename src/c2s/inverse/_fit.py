"""Fitting, selecting and applying inverse models."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from c2s._errors import C2SError
from c2s.inverse._models import InverseModel, LinearInverse, RankMeanInverse
from c2s.metrics import reconstruction_metrics
from c2s.sentences import CellSentences

DEFAULT_CANDIDATES = ("rank_mean", "linear")


def make_model(name: str, *, seed: int = 0) -> InverseModel:
    """A fresh (unfitted) inverse model by name: ``"linear"`` or ``"rank_mean"``."""
    if name == "linear":
        return LinearInverse(seed=seed)
    if name == "rank_mean":
        return RankMeanInverse(seed=seed)
    raise C2SError(
        f"Unknown inverse model {name!r}; choose one of {sorted(InverseModel.registry)}."
    )


def evaluate(
    model: InverseModel,
    sentences: CellSentences,
    *,
    max_entries: int | None = 2_000_000,
    seed: int = 0,
) -> dict[str, float]:
    """R^2 / Pearson / Spearman of reconstructed vs stored values over expressed genes.

    Every gene in every sentence counts once (genes outside a sentence are 0 in both and are
    left out, so they do not inflate the scores). Spearman is computed on a seeded sample of
    at most ``max_entries`` entries.
    """
    if sentences.values is None:
        raise C2SError("Evaluating an inverse model needs sentences with expression values.")
    y = sentences.values
    pred = model.predict_sentences(sentences)
    keep = y > 0
    y, pred = y[keep], pred[keep]
    if len(y) == 0:
        raise C2SError("No expressed genes to evaluate on.")
    out = reconstruction_metrics(y, pred)
    if max_entries is not None and len(y) > max_entries:
        from c2s.metrics import spearman

        idx = np.random.default_rng(seed).choice(len(y), size=max_entries, replace=False)
        out["spearman"] = spearman(y[idx], pred[idx])
    return out


@dataclass
class InverseFit:
    """Result of :func:`fit_inverse`: the chosen model and every candidate's held-out scores."""

    model: InverseModel
    selected: str
    metrics: dict[str, dict[str, float]]
    n_train_cells: int
    n_heldout_cells: int
    candidates: dict[str, InverseModel] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        return {
            "selected": self.selected,
            "params": self.model.to_dict(),
            "heldout_metrics": self.metrics,
            "n_train_cells": self.n_train_cells,
            "n_heldout_cells": self.n_heldout_cells,
            "metric_scope": "expressed genes of held-out cells",
        }


def fit_inverse(
    sentences: CellSentences,
    *,
    model: str = "auto",
    heldout=None,
    seed: int = 0,
) -> InverseFit:
    """Fit inverse models on training cells and pick the best by held-out R^2.

    Parameters
    ----------
    sentences
        Cell sentences with values (e.g. ``C2SDataset.sentences()``).
    model
        ``"auto"`` (fit ``rank_mean`` and ``linear``, keep the better), or one model name.
    heldout
        Boolean mask or indices of held-out cells. Default: the validation and test cells of
        the ``split`` obs column when present, else a seeded 20% of cells.
    seed
        Seed for cell sampling.

    Returns
    -------
    :class:`InverseFit`.
    """
    n = sentences.n_cells
    mask = np.zeros(n, dtype=bool)
    if heldout is None:
        if "split" in sentences.obs.columns:
            mask = np.asarray(sentences.obs["split"].astype(str) != "train")
        else:
            rng = np.random.default_rng(seed)
            mask[rng.choice(n, size=max(1, n // 5), replace=False)] = True
    else:
        heldout = np.asarray(heldout)
        if heldout.dtype == bool:
            mask = heldout.copy()
        else:
            mask[heldout] = True
    if mask.all() or not mask.any():
        if n < 2:
            raise C2SError("Fitting an inverse model needs at least 2 cells.")
        mask[:] = False
        mask[np.random.default_rng(seed).choice(n, size=max(1, n // 5), replace=False)] = True
    train, test = sentences.take(~mask), sentences.take(mask)
    names = DEFAULT_CANDIDATES if model == "auto" else (model,)
    fitted, metrics = {}, {}
    for name in names:
        m = make_model(name, seed=seed).fit(train)
        fitted[name] = m
        metrics[name] = evaluate(m, test, seed=seed)
    best = max(names, key=lambda k: np.nan_to_num(metrics[k]["r2"], nan=-np.inf))
    return InverseFit(fitted[best], best, metrics, train.n_cells, test.n_cells, fitted)


def reconstruct(sentences: CellSentences, model: InverseModel, *, clip_negative: bool = False):
    """Expression from cell sentences as a sparse AnnData aligned to the vocabulary.

    Every gene in a sentence gets the model's value for its position; genes not in the
    sentence are 0. With ``clip_negative``, negative predictions (``linear`` far down long
    sentences) become 0.

    Returns
    -------
    AnnData (cells x vocabulary genes) with CSR float32 ``X``, ``obs`` from the sentences and
    ``var["display_name"]``, ``var["n_cells_expressed"]``.
    """
    import anndata as ad
    import pandas as pd

    pred = model.predict_sentences(sentences)
    if clip_negative:
        np.maximum(pred, 0, out=pred)
    X = sentences.to_csr(pred)
    if clip_negative or (X.data == 0).any():
        X.eliminate_zeros()
    v = sentences.vocab
    var = pd.DataFrame(
        {"display_name": v.display_names.astype(str), "n_cells_expressed": v.n_cells_expressed},
        index=pd.Index(v.genes.astype(str)),
    )
    obs = sentences.obs.copy()
    obs.index = obs.index.astype(str)
    return ad.AnnData(X=X, obs=obs, var=var)
