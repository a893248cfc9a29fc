"""Shared fixtures: small synthetic data, scanpy's bundled PBMCs, and output-dir checks."""

from __future__ import annotations

import os

# Never reach the network from tests, and keep progress bars quiet.
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("C2S_NO_PROGRESS", "1")

import pytest

import c2s

N_CELLS = 400
N_GENES = 600


@pytest.fixture(scope="session")
def _counts():
    return c2s.datasets.synthetic(N_CELLS, N_GENES, genes_per_cell=150, seed=0)


@pytest.fixture(scope="session")
def _lognorm():
    return c2s.datasets.synthetic(N_CELLS, N_GENES, genes_per_cell=150, normalize=True, seed=0)


@pytest.fixture(scope="session")
def _pbmc():
    return c2s.datasets.pbmc68k_reduced()


@pytest.fixture
def counts_adata(_counts):
    """Synthetic raw counts (400 cells x 600 genes); a fresh copy per test."""
    return _counts.copy()


@pytest.fixture
def lognorm_adata(_lognorm):
    """The same cells as ``counts_adata``, log10-normalized; a fresh copy per test."""
    return _lognorm.copy()


@pytest.fixture
def pbmc(_pbmc):
    """scanpy's bundled 700-cell PBMC data with log-normalized X; a fresh copy per test."""
    return _pbmc.copy()


@pytest.fixture
def lognorm_sentences(_lognorm):
    return c2s.sentences.from_anndata(_lognorm, seed=0)


@pytest.fixture
def scaled_adata(_lognorm):
    """X scaled (negative values), log-normalized values in .raw and in layers['lognorm']."""
    a = _lognorm.copy()
    dense = a.X.toarray()
    a.raw = a.copy()
    a.layers["lognorm"] = a.X.copy()
    a.X = (dense - dense.mean(axis=0)) / (dense.std(axis=0) + 1e-6)
    return a


@pytest.fixture(scope="session")
def pbmc_dataset(_pbmc, tmp_path_factory):
    """The PBMC cells converted once per session (cell_type-stratified split, seed 0), with
    a fitted inverse model."""
    out = tmp_path_factory.mktemp("pbmc") / "pbmc"
    ds = c2s.io.convert(
        _pbmc, out, obs_keys=["cell_type", "organism", "tissue"], seed=0, stratify="cell_type"
    )
    ds.update_meta(inverse=c2s.inverse.fit_inverse(ds.sentences(split="train")).to_dict())
    return ds


@pytest.fixture(scope="session")
def trained_model(pbmc_dataset, tmp_path_factory):
    """A tiny GPT-NeoX trained briefly on PBMC for cell-type prediction and generation
    (30 genes per sentence); the saved directory."""
    pytest.importorskip("torch")
    from c2s.model import C2SModel
    from c2s.train import fine_tune

    out = tmp_path_factory.mktemp("trained") / "model"
    m = C2SModel.from_scratch(pbmc_dataset, max_length=512, device="cpu")
    fine_tune(
        m,
        pbmc_dataset,
        out=out,
        tasks=["cell_type_prediction:2", "cell_type_generation"],
        n_genes=30,
        max_steps=60,
        batch_size=16,
        learning_rate=3e-3,
        eval_split=None,
    )
    return out
