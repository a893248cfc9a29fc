"""Synthetic perturbation data: the planted effects are what the cells show."""

from __future__ import annotations

import numpy as np
import pytest

import c2s
from c2s._errors import C2SError


@pytest.fixture(scope="module")
def pert():
    return c2s.datasets.synthetic_perturbation(n_cells=150, n_genes=300, normalize=True, seed=1)


def shift(adata, cond, ctx):
    """Observed mean change from the same context's controls (log-normalized)."""
    X = adata.X.toarray()
    obs = adata.obs
    at = (obs["perturbation"] == cond).to_numpy() & (obs["context"] == ctx).to_numpy()
    ctl = (obs["perturbation"] == "control").to_numpy() & (obs["context"] == ctx).to_numpy()
    return X[at].mean(0) - X[ctl].mean(0)


def test_layout_and_truth(pert, tmp_path):
    u = pert.uns["synthetic_perturbation"]
    conds = list(pert.obs["perturbation"].cat.categories)
    assert conds[0] == "control" and {"PERT1", "PERT2+PERT3", "PERT4+PERT5"} <= set(conds)
    counts = pert.obs.groupby(["perturbation", "context"], observed=True).size()
    assert (counts == 150).all() and len(counts) == len(conds) * 2
    assert set(u["program"]) <= set(pert.var_names) and u["context"] == "ifn"
    lfc = u["log2_fold_change"]
    assert lfc.shape == (300, len(conds) * 2) and (lfc["control|ifn"] == 0).all()
    # combinations: the sum of the singles, plus a term of its own for the non-additive one
    add = lfc["PERT2|ifn"] + lfc["PERT3|ifn"]
    assert np.allclose(lfc["PERT2+PERT3|ifn"], add)
    own = lfc["PERT4+PERT5|ifn"] - lfc["PERT4|ifn"] - lfc["PERT5|ifn"]
    assert (own != 0).sum() == 15 and (lfc.loc[own != 0, ["PERT4|ifn", "PERT5|ifn"]] == 0).all(None)
    same = c2s.datasets.synthetic_perturbation(n_cells=150, n_genes=300, normalize=True, seed=1)
    assert (same.X != pert.X).nnz == 0
    import anndata as ad

    pert.write_h5ad(tmp_path / "p.h5ad")  # the truth travels with the cells
    back = ad.read_h5ad(tmp_path / "p.h5ad").uns["synthetic_perturbation"]
    assert np.allclose(back["log2_fold_change"].to_numpy(), lfc.to_numpy())


def test_planted_effects_show_in_the_cells(pert):
    u = pert.uns["synthetic_perturbation"]
    prog = pert.var_names.isin(u["program"])
    in_a, in_b = shift(pert, "PERT1", "ifn"), shift(pert, "PERT1", "no_ifn")
    # in one context only (elsewhere the programme moves by composition and noise alone)
    assert in_a[prog].mean() > 0.2 and abs(in_b[prog].mean()) < in_a[prog].mean() / 4
    other = shift(pert, "PERT2", "ifn")
    assert abs(other[prog].mean()) < in_a[prog].mean() / 4
    # the planted targets move in the planted direction
    lfc = u["log2_fold_change"]["PERT2|ifn"].to_numpy()
    up, down = lfc > 0, lfc < 0
    assert other[up].mean() > 0.2 and other[down].mean() < -0.1
    # the non-additive combination departs from the sum of its singles where planted
    own = (
        u["log2_fold_change"]["PERT4+PERT5|ifn"]
        - u["log2_fold_change"]["PERT4|ifn"]
        - u["log2_fold_change"]["PERT5|ifn"]
    ).to_numpy()
    combo = shift(pert, "PERT4+PERT5", "ifn")
    summed = shift(pert, "PERT4", "ifn") + shift(pert, "PERT5", "ifn")
    assert np.abs(combo - summed)[own != 0].mean() > 3 * np.abs(combo - summed)[own == 0].mean()


def test_bad_settings_are_refused():
    with pytest.raises(C2SError, match="two distinct contexts"):
        c2s.datasets.synthetic_perturbation(contexts=["a"])
    with pytest.raises(C2SError, match="at least 5"):
        c2s.datasets.synthetic_perturbation(n_perturbations=3)
    with pytest.raises(C2SError, match="n_genes"):
        c2s.datasets.synthetic_perturbation(n_genes=20)
