"""Synthetic data and the bundled PBMCs."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import c2s
from c2s._errors import C2SError
from c2s.datasets import synthetic, write_synthetic_h5ad


def test_same_seed_same_data():
    a = synthetic(300, 500, seed=11)
    b = synthetic(300, 500, seed=11)
    assert (a.X != b.X).nnz == 0
    pd.testing.assert_frame_equal(a.obs, b.obs)
    assert list(a.var_names) == list(b.var_names)


def test_different_seeds_differ():
    a = synthetic(300, 500, seed=1)
    b = synthetic(300, 500, seed=2)
    assert (a.X != b.X).nnz > 0.5 * min(a.X.nnz, b.X.nnz)


def test_shape_types_and_names():
    a = synthetic(250, 400, n_cell_types=3, seed=0)
    assert a.shape == (250, 400)
    assert sp.issparse(a.X) and a.X.format == "csr" and a.X.dtype == np.float32
    assert list(a.obs.columns) == ["cell_type", "tissue", "donor", "organism"]
    assert set(a.obs["cell_type"]) <= {"type_0", "type_1", "type_2"}
    assert a.obs["cell_type"].nunique() == 3
    assert a.var_names[0] == "Gene0" and a.var_names.is_unique
    assert c2s.pp.check_expression(a.X).kind == "counts"
    n = synthetic(250, 400, n_cell_types=3, normalize=True, seed=0)
    assert c2s.pp.check_expression(n.X).kind == "log-normalized"
    np.testing.assert_allclose(n.X.toarray(), c2s.pp.log10_normalize(a.X).toarray(), rtol=1e-6)
    with pytest.raises(C2SError, match="positive"):
        synthetic(0, 10)


@pytest.mark.parametrize(
    ("n_genes", "target", "n_markers"), [(2000, 500, 50), (2000, 200, 50), (1000, 150, 10)]
)
def test_genes_per_cell_near_target(n_genes, target, n_markers):
    a = synthetic(400, n_genes, genes_per_cell=target, n_markers=n_markers, seed=4)
    mean = np.diff(a.X.indptr).mean()
    assert abs(mean - target) < 0.15 * target, mean


def test_genes_per_cell_near_target_with_many_markers():
    a = synthetic(400, 600, genes_per_cell=150, n_markers=50, seed=4)
    mean = np.diff(a.X.indptr).mean()
    assert abs(mean - 150) < 0.15 * 150, mean


def test_many_ties():
    a = synthetic(300, 2000, genes_per_cell=500, seed=0)
    X = a.X
    distinct = np.array([len(np.unique(X.data[X.indptr[i] : X.indptr[i + 1]])) for i in range(300)])
    lengths = np.diff(X.indptr)
    assert np.median(distinct / lengths) < 0.15
    assert distinct.max() < lengths.max() / 3


def test_cell_types_have_distinct_programs():
    a = synthetic(600, 800, n_cell_types=2, seed=0)
    X = a.X.toarray()
    t = a.obs["cell_type"].to_numpy()
    m0 = X[t == "type_0"].mean(axis=0)
    m1 = X[t == "type_1"].mean(axis=0)
    ratio = (m0 + 1e-3) / (m1 + 1e-3)
    assert (ratio > 3).sum() >= 10 and (ratio < 1 / 3).sum() >= 10


@pytest.mark.parametrize("normalize", [False, True])
def test_write_synthetic_h5ad_matches_synthetic(tmp_path, normalize):
    path = write_synthetic_h5ad(
        tmp_path / "s.h5ad", 500, 1200, seed=9, genes_per_cell=200, normalize=normalize
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".c2s-tmp-")]
    b = ad.read_h5ad(path)
    a = synthetic(500, 1200, seed=9, genes_per_cell=200, normalize=normalize)
    assert b.shape == a.shape and sp.issparse(b.X)
    assert (a.X != b.X).nnz == 0
    assert list(b.obs_names) == list(a.obs_names)
    assert list(b.var_names) == list(a.var_names)
    assert list(b.obs["cell_type"].astype(str)) == list(a.obs["cell_type"].astype(str))


def test_write_synthetic_h5ad_chunks_do_not_change_the_file_content(tmp_path):
    p1 = write_synthetic_h5ad(tmp_path / "a.h5ad", 300, 400, chunk_size=300, seed=1)
    p2 = write_synthetic_h5ad(tmp_path / "b.h5ad", 300, 400, chunk_size=300, seed=1)
    assert (ad.read_h5ad(p1).X != ad.read_h5ad(p2).X).nnz == 0
    with pytest.raises(C2SError, match="Unknown arguments"):
        write_synthetic_h5ad(tmp_path / "c.h5ad", 10, 10, colour="red")


def test_write_synthetic_h5ad_matches_synthetic_beyond_one_chunk(tmp_path):
    path = write_synthetic_h5ad(tmp_path / "big.h5ad", 1100, 2000, seed=0, genes_per_cell=50)
    a = synthetic(1100, 2000, seed=0, genes_per_cell=50)
    assert (a.X != ad.read_h5ad(path).X).nnz == 0


def test_pbmc68k_reduced(pbmc):
    assert pbmc.shape == (700, 765)
    assert c2s.pp.check_expression(pbmc.X).kind == "log-normalized"
    assert {"cell_type", "organism", "tissue"} <= set(pbmc.obs.columns)
    assert pbmc.obs["cell_type"].nunique() == 10
    assert (pbmc.obs["organism"] == "Homo sapiens").all()
    assert "X_umap" in pbmc.obsm
