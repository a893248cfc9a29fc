"""Fixtures of the server tests: eight PBMC cells in the three forms a request takes."""

from __future__ import annotations

import numpy as np
import pytest

import c2s


@pytest.fixture(scope="module")
def client(trained_model):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from c2s.serve import create_app

    return TestClient(create_app(str(trained_model), device="cpu", max_cells=50))


@pytest.fixture(scope="module")
def cells(_pbmc):
    """Eight PBMC cells: their sentences, their expression records, and the AnnData."""
    a = _pbmc[:8].copy()
    sentences = c2s.sentences.from_anndata(a, n_genes=30, seed=0).to_text()
    X = a.X.toarray() if hasattr(a.X, "toarray") else np.asarray(a.X)
    records = [{g: float(v) for g, v in zip(a.var_names, row, strict=True) if v > 0} for row in X]
    return sentences, records, a
