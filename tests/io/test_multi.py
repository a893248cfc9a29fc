"""Many inputs, one dataset: cells in order with a column naming their file, genes aligned by
name; gene sets that disagree are refused or, on request, joined and reported."""

from __future__ import annotations

import json

import numpy as np
import pytest

import c2s
from c2s import C2SError
from c2s.cli import main


@pytest.fixture
def halves(tmp_path, _pbmc):
    a, b = _pbmc[:300].copy(), _pbmc[300:].copy()
    a.write_h5ad(tmp_path / "a.h5ad")
    b.write_h5ad(tmp_path / "b.h5ad")
    return tmp_path / "a.h5ad", tmp_path / "b.h5ad"


def _gene_sets(ds) -> list[set]:
    return [set(t.split()) for t in ds.texts()]


def test_files_with_the_same_genes_give_the_dataset_of_their_cells(halves, tmp_path, _pbmc):
    a, b = halves
    whole = c2s.io.convert(_pbmc, tmp_path / "whole", obs_keys=["cell_type"], stratify="cell_type")
    # the second file's genes in another order: aligned by name, not by position
    b_shuffled = c2s.datasets.pbmc68k_reduced()[300:].copy()
    b_shuffled = b_shuffled[:, np.random.default_rng(0).permutation(b_shuffled.n_vars)].copy()
    b_shuffled.write_h5ad(tmp_path / "b_shuffled.h5ad")
    for second in (b, tmp_path / "b_shuffled.h5ad"):
        out = tmp_path / f"both_{second.stem}"
        ds = c2s.io.convert([a, second], out, obs_keys=["cell_type"], stratify="cell_type")
        assert ds.texts() == whole.texts()  # ranks and ties as one file of all the cells
        assert np.array_equal(ds.split_codes(), whole.split_codes())
        obs = ds.obs()
        assert list(obs["source_file"].astype(str)) == ["a.h5ad"] * 300 + [second.name] * 400
        assert json.loads((out / "c2s_dataset.json").read_text())["source"]["file"] == [
            "a.h5ad", second.name,
        ]  # fmt: skip


def test_gene_sets_that_differ_are_refused_or_joined_and_reported(tmp_path, _pbmc):
    a = _pbmc[:200, 100:].copy()  # lacks the first 100 genes
    b = _pbmc[200:400, :700].copy()  # lacks the last 65
    a.write_h5ad(tmp_path / "a.h5ad")
    b.write_h5ad(tmp_path / "b.h5ad")
    files = [tmp_path / "a.h5ad", tmp_path / "b.h5ad"]
    with pytest.raises(C2SError, match=r"b\.h5ad lacks 65 of a\.h5ad.s genes .* has 100 genes"):
        c2s.io.convert(files, tmp_path / "same")
    assert not (tmp_path / "same").exists()
    with pytest.warns(UserWarning, match=r"a\.h5ad: 100 of the 765 genes absent; b\.h5ad: 65"):
        union = c2s.io.convert(files, tmp_path / "union", genes="union")
    assert union.meta["n_genes"] == 765
    assert union.meta["source"]["genes"]["inputs"]["b.h5ad"] == {
        "genes": 700, "absent": 65, "left_out": 0,
    }  # fmt: skip
    alone = [c2s.io.convert(x, tmp_path / f"alone_{i}") for i, x in enumerate((a, b))]
    assert _gene_sets(union) == _gene_sets(alone[0]) + _gene_sets(alone[1])
    with pytest.warns(UserWarning, match="100 of its genes left out"):
        inter = c2s.io.convert(files, tmp_path / "inter", genes="intersection")
    shared = {g.upper() for g in _pbmc.var_names[100:700]}
    assert inter.meta["n_genes"] == 600
    assert all(s <= shared for s in _gene_sets(inter))
    assert _gene_sets(inter)[0] == _gene_sets(alone[0])[0] & shared


def test_disjoint_gene_sets(tmp_path, _pbmc):
    a, b = _pbmc[:100, :300].copy(), _pbmc[100:200, 300:].copy()
    with pytest.raises(C2SError, match="no gene in common"):
        c2s.io.convert([a, b], tmp_path / "i", genes="intersection")
    with pytest.warns(UserWarning):
        ds = c2s.io.convert([a, b], tmp_path / "u", genes="union", obs_keys=["cell_type"])
    assert ds.meta["n_genes"] == 765 and ds.n_cells == 200
    assert set(ds.obs()["source_file"].astype(str)) == {"input 0", "input 1"}
    with pytest.raises(C2SError, match="genes must be one of"):
        c2s.io.convert([a, b], tmp_path / "x", genes="all")


def test_convert_cli_takes_several_files(halves, tmp_path, capsys):
    a, b = halves
    out = tmp_path / "cli"
    code = main(["convert", str(a), str(b), str(out), "--obs", "cell_type",
                 "--source-key", "batch", "--json"])  # fmt: skip
    assert code == 0 and json.loads(capsys.readouterr().out)["n_cells"] == 700
    assert c2s.io.read_dataset(out).obs()["batch"].astype(str).iloc[-1] == "b.h5ad"
    code = main(["convert", str(a), str(b), str(tmp_path / "bad"), "--genes", "none"])
    assert code == 2 and "invalid choice" in capsys.readouterr().err
