"""The JSON the API answers with, from the verbs' results: predictions, embeddings, the 2-D
layout and generated cells."""

from __future__ import annotations

import math

import numpy as np


def predictions(result) -> list[dict]:
    """Per cell of a :class:`~c2s.tl.PredictionResult`: its label, the label's probability
    and every candidate's (None and ``{}`` for a cell with no prediction)."""
    n = len(result.index)
    names = result.candidates if result.probabilities is not None else []
    P = np.zeros((n, 0)) if result.probabilities is None else result.probabilities.astype(float)
    top = [None] * n if result.probability is None else result.probability.tolist()
    return [
        {
            "label": None if _missing(label) else str(label),
            "probability": None if _missing(p) else float(p),
            "probabilities": {
                name: float(v) for name, v in zip(names, row, strict=True) if not math.isnan(v)
            },
        }
        for label, p, row in zip(result.labels.tolist(), top, P, strict=True)
    ]


def embeddings(result) -> list[list[float] | None]:
    """Per cell of an :class:`~c2s.tl.EmbeddingResult`: its vector (None where it has none)."""
    return [None if np.isnan(row).any() else [float(v) for v in row] for row in result.X]


def layout(coords: np.ndarray, method: str) -> dict:
    return {
        "method": method,
        "coords": [None if math.isnan(x) else [float(x), float(y)] for x, y in coords],
    }


def generated(adata, said: list[str]) -> dict:
    """The response of /v1/generate: each cell's label, sentence and expression."""
    label_col = next(c for c in adata.obs.columns if not c.startswith("c2s_"))
    X = adata.X.tocsr() if hasattr(adata.X, "tocsr") else None
    genes = adata.var_names.astype(str)
    cells = []
    for i in range(adata.n_obs):
        cell = {
            "label": str(adata.obs[label_col].iat[i]),
            "sentence": str(adata.obs["c2s_sentence"].iat[i]),
        }
        if X is not None:
            row = X[i]
            cell["expression"] = {
                genes[j]: float(v) for j, v in zip(row.indices, row.data, strict=True)
            }
        cells.append(cell)
    return {"cells": cells, "warnings": said}


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))
