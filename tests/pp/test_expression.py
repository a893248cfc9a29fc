"""Expression checks, log10 normalization and QC."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from _helpers import dense

from c2s._errors import C2SError
from c2s.pp import check_expression, log10_normalize, normalize, qc


def reference_log10(D: np.ndarray, target_sum: float = 1e4) -> np.ndarray:
    D = np.asarray(D, dtype=np.float64)
    out = np.zeros_like(D)
    for i, row in enumerate(D):
        total = row.sum()
        if total > 0:
            out[i] = np.log10(1.0 + row / total * target_sum)
    return out


# ---------------------------------------------------------------------------------------
# check_expression
# ---------------------------------------------------------------------------------------
def test_check_expression_kinds(counts_adata, lognorm_adata, scaled_adata):
    c = check_expression(counts_adata.X)
    assert c.kind == "counts" and c.min >= 0 and not c.has_nan
    assert c.max == float(counts_adata.X.max())
    assert check_expression(dense(counts_adata.X).astype(np.int64)).kind == "counts"
    assert check_expression(lognorm_adata.X).kind == "log-normalized"
    assert check_expression(dense(lognorm_adata.X)).kind == "log-normalized"
    s = check_expression(scaled_adata.X)
    assert s.kind == "scaled" and s.min < 0
    assert check_expression(sp.csr_matrix((4, 5))).kind == "empty"


def test_check_expression_nan_and_rows_checked():
    D = np.array([[1.0, 2.0], [np.nan, 3.0]])
    c = check_expression(D)
    assert c.has_nan and c.kind == "counts" and c.n_rows_checked == 2
    # only the first n_rows rows are looked at
    M = np.vstack([np.ones((10, 3)), -np.ones((5, 3))])
    assert check_expression(M, n_rows=10).kind == "counts"
    assert check_expression(M, n_rows=10).n_rows_checked == 10
    assert check_expression(M, n_rows=None).kind == "scaled"
    assert check_expression(sp.csr_matrix(M), n_rows=11).kind == "scaled"


# ---------------------------------------------------------------------------------------
# log10_normalize
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csr", "csc", "dense", "dense-int"])
def test_log10_normalize_matches_dense_formula(counts_adata, fmt):
    D = dense(counts_adata.X[:60])
    D[[0, 7]] = 0  # rows without counts
    X = {
        "csr": sp.csr_matrix(D),
        "csc": sp.csc_matrix(D),
        "dense": D,
        "dense-int": D.astype(np.int32),
    }[fmt]
    before = dense(X).copy()
    Y = log10_normalize(X)
    assert Y.dtype == np.float32
    if fmt in ("csr", "csc"):
        assert sp.issparse(Y) and Y.format == "csr"
    else:
        assert isinstance(Y, np.ndarray)
    np.testing.assert_allclose(dense(Y), reference_log10(D), rtol=2e-6, atol=1e-6)
    assert np.all(dense(Y)[[0, 7]] == 0)
    np.testing.assert_array_equal(dense(X), before)  # input untouched


def test_log10_normalize_target_sum():
    D = np.array([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [5.0, 5.0, 10.0]])
    np.testing.assert_allclose(
        log10_normalize(sp.csr_matrix(D), target_sum=100).toarray(),
        reference_log10(D, 100),
        rtol=1e-6,
    )
    # row sums of 10**Y - 1 recover the target
    Y = log10_normalize(D, target_sum=100)
    np.testing.assert_allclose(
        (10.0 ** Y.astype(np.float64) - 1).sum(axis=1), [100, 0, 100], rtol=1e-5
    )


# ---------------------------------------------------------------------------------------
# normalize
# ---------------------------------------------------------------------------------------
def test_normalize_counts_in_place_and_copy(counts_adata):
    orig = counts_adata.X.copy()
    out = normalize(counts_adata, copy=True)
    np.testing.assert_array_equal(dense(counts_adata.X), dense(orig))  # copy: untouched
    np.testing.assert_allclose(dense(out.X), reference_log10(dense(orig)), rtol=2e-6, atol=1e-6)
    assert out.uns["c2s"]["normalization"]["target_sum"] == 1e4
    assert normalize(counts_adata) is None
    np.testing.assert_array_equal(dense(counts_adata.X), dense(out.X))


def test_normalize_layer(counts_adata):
    counts = counts_adata.X.copy()
    counts_adata.layers["counts"] = counts.copy()
    counts_adata.X = log10_normalize(counts)
    x_before = counts_adata.X.copy()
    normalize(counts_adata, layer="counts", target_sum=100)
    np.testing.assert_allclose(
        dense(counts_adata.layers["counts"]),
        reference_log10(dense(counts), 100),
        rtol=2e-6,
        atol=1e-6,
    )
    np.testing.assert_array_equal(dense(counts_adata.X), dense(x_before))


def test_normalize_refuses_non_counts(lognorm_adata, scaled_adata):
    with pytest.raises(C2SError, match="raw counts") as e:
        normalize(lognorm_adata)
    assert "log-normalized" in str(e.value)
    with pytest.raises(C2SError, match="raw counts"):
        normalize(scaled_adata)
    assert "c2s" not in lognorm_adata.uns


# ---------------------------------------------------------------------------------------
# qc
# ---------------------------------------------------------------------------------------
def expected_qc(D, min_genes, min_cells):
    n_genes = (D > 0).sum(axis=1)
    cells = np.flatnonzero(n_genes >= min_genes)
    n_cells = (D[cells] > 0).sum(axis=0)
    genes = np.flatnonzero(n_cells >= min_cells)
    return cells, genes, n_genes[cells], n_cells[genes]


@pytest.mark.parametrize("copy", [True, False])
def test_qc_filters_cells_then_genes(counts_adata, copy):
    D = dense(counts_adata.X)
    min_genes = int(np.median((D > 0).sum(axis=1)))
    min_cells = 20
    cells, genes, n_genes, n_cells = expected_qc(D, min_genes, min_cells)
    assert 0 < len(cells) < D.shape[0] and 0 < len(genes) < D.shape[1]
    obs_names, var_names = counts_adata.obs_names[cells], counts_adata.var_names[genes]
    out = qc(counts_adata, min_genes=min_genes, min_cells=min_cells, copy=copy)
    if copy:
        assert counts_adata.shape == D.shape  # untouched
    else:
        assert out is None
        out = counts_adata
    assert list(out.obs_names) == list(obs_names)
    assert list(out.var_names) == list(var_names)
    np.testing.assert_array_equal(dense(out.X), D[np.ix_(cells, genes)])
    np.testing.assert_array_equal(out.obs["n_genes"], n_genes)
    np.testing.assert_array_equal(out.var["n_cells"], n_cells)


def test_qc_dense_and_nothing_to_drop(counts_adata):
    counts_adata.X = dense(counts_adata.X)
    out = qc(counts_adata, min_genes=1, min_cells=0, copy=True)
    assert out.shape == counts_adata.shape
    np.testing.assert_array_equal(out.obs["n_genes"], (counts_adata.X > 0).sum(axis=1))


def test_qc_refuses_when_no_cell_passes(counts_adata):
    most = int((dense(counts_adata.X) > 0).sum(axis=1).max())
    with pytest.raises(C2SError, match="min_genes"):
        qc(counts_adata, min_genes=most + 1)
