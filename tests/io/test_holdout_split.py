"""Held-out groups: whole values of a column in test (unseen perturbations), or every value
in one split; clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

import c2s
from c2s._errors import C2SError
from c2s.io import assign_splits


def test_holdout_cells_all_go_to_test_and_the_rest_is_split():
    values = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    codes = assign_splits(100, (0.8, 0.1, 0.1), seed=2, holdout=values == "c")
    assert (codes[values == "c"] == 2).all()
    rest = codes[values != "c"]
    assert np.bincount(rest, minlength=3).tolist() == [64, 8, 8]  # fractions of the other 80
    assert (assign_splits(100, (0.8, 0.1, 0.1), seed=2, holdout=values == "c") == codes).all()


def test_whole_groups_go_to_one_split_each():
    values = np.repeat([f"p{i}" for i in range(10)], 7)
    codes = assign_splits(len(values), (0.6, 0.2, 0.2), seed=0, groups=values)
    for v in np.unique(values):
        assert len(set(codes[values == v])) == 1  # a group is never split
    per_split = [len({v for v, c in zip(values, codes, strict=True) if c == s}) for s in range(3)]
    assert per_split == [6, 2, 2]
    with pytest.raises(C2SError, match="distinct values"):
        assign_splits(4, (0.5, 0.25, 0.25), groups=["a", "a", "b", "b"])


def test_convert_holds_out_named_perturbations(tmp_path):
    pert = c2s.datasets.synthetic_perturbation(n_cells=20, n_genes=120, n_targets=10)
    held = ["PERT3", "PERT4+PERT5"]
    ds = c2s.io.convert(
        pert, tmp_path / "ds", normalize=True, split_by="perturbation", holdout=held
    )
    obs = ds.obs(["perturbation"])
    in_test = obs["perturbation"].astype(str).isin(held)
    assert (obs.loc[in_test, "split"] == "test").all()
    seen = obs.loc[~in_test]
    assert set(seen["split"]) == {"train", "validation", "test"}  # seen ones in every split
    assert ds.meta["split"]["holdout"] == held and ds.meta["split"]["split_by"] == "perturbation"
    with pytest.raises(C2SError, match="No cell has perturbation in"):
        c2s.io.convert(pert, tmp_path / "x", normalize=True, split_by="perturbation",
                       holdout=["PERT99"])  # fmt: skip
    with pytest.raises(C2SError, match="no such obs column"):
        c2s.io.convert(pert, tmp_path / "x", normalize=True, split_by="drug", holdout=["a"])
    with pytest.raises(C2SError, match="give split_by"):
        c2s.io.convert(pert, tmp_path / "x", normalize=True, holdout=["PERT3"])
    assert not (tmp_path / "x").exists()
