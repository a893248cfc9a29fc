"""TileDB-SOMA experiments as input: the same cells give the same dataset, byte for byte, as
the .h5ad they came from; queries select cells and genes; bad queries say what is wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest

tiledbsoma = pytest.importorskip("tiledbsoma")

import c2s  # noqa: E402
from c2s import C2SError  # noqa: E402
from c2s.cli import main  # noqa: E402

KEYS = ["cell_type", "organism", "n_counts"]


@pytest.fixture(scope="module")
def soma_pbmc(tmp_path_factory, _pbmc):
    """PBMC as an .h5ad and as a SOMA experiment written by tiledbsoma.io.from_anndata."""
    import tiledbsoma.io

    root = tmp_path_factory.mktemp("soma")
    _pbmc.write_h5ad(root / "pbmc.h5ad")
    tiledbsoma.io.from_anndata(str(root / "pbmc_soma"), _pbmc, measurement_name="RNA")
    return root


def _same_dataset(a, b) -> None:
    """Every file byte-identical; c2s_dataset.json equal except where the cells came from."""
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        if name == "c2s_dataset.json":
            ma, mb = (json.loads((d / name).read_text()) for d in (a, b))
            ma.pop("source"), mb.pop("source")
            assert ma == mb
        else:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_soma_and_h5ad_give_identical_datasets(soma_pbmc, tmp_path):
    opts = {"obs_keys": KEYS, "stratify": "cell_type", "shard_size": 300, "seed": 3}
    c2s.io.convert(soma_pbmc / "pbmc.h5ad", tmp_path / "h5ad", **opts)
    ds = c2s.io.convert(soma_pbmc / "pbmc_soma", tmp_path / "soma", chunk_size=97, **opts)
    _same_dataset(tmp_path / "h5ad", tmp_path / "soma")
    assert ds.meta["source"]["soma"] == str(soma_pbmc / "pbmc_soma")
    assert ds.meta["source"]["matrix"].endswith("X['data']")  # the only layer


def test_filters_select_the_same_cells_and_genes_as_slicing(soma_pbmc, tmp_path, _pbmc):
    genes = list(_pbmc.var_names[::3])
    sub = _pbmc[_pbmc.obs["cell_type"] == "CD14+ Monocyte", genes].copy()
    c2s.io.convert(sub, tmp_path / "sliced", obs_keys=KEYS)
    with tiledbsoma.Experiment.open(str(soma_pbmc / "pbmc_soma")) as exp:  # an opened handle
        ds = c2s.io.convert(
            exp, tmp_path / "query", obs_keys=[*KEYS, "soma_joinid"],
            obs_value_filter="cell_type == 'CD14+ Monocyte'",
            var_value_filter=f"var_id in {genes}",
        )  # fmt: skip
    assert ds.n_cells == sub.n_obs and ds.meta["n_genes"] == len(genes)
    assert c2s.io.read_dataset(tmp_path / "sliced").texts() == ds.texts()
    joinids = ds.obs(columns=["soma_joinid"])["soma_joinid"].to_numpy()
    want = np.flatnonzero((_pbmc.obs["cell_type"] == "CD14+ Monocyte").to_numpy())
    assert np.array_equal(joinids, want)  # results join back to the experiment


def test_census_style_gene_symbols_come_from_feature_name(tmp_path, _pbmc):
    import tiledbsoma.io

    a = _pbmc[:50].copy()
    a.var["feature_name"] = a.var_names.astype(str)
    a.var_names = [f"ENSG{i:011d}" for i in range(a.n_vars)]
    uri = str(tmp_path / "census_like")
    tiledbsoma.io.from_anndata(uri, a, measurement_name="RNA", var_id_name="feature_id")
    ds = c2s.io.convert(uri, tmp_path / "ds")
    assert ds.meta["source"]["var_names"] == "feature_name"
    assert set(ds.texts()[0].split()) <= {g.upper() for g in _pbmc.var_names}
    a.var.loc[a.var_names[0], "feature_name"] = ""
    tiledbsoma.io.from_anndata(str(tmp_path / "bad"), a, measurement_name="RNA",
                               var_id_name="feature_id")  # fmt: skip
    with pytest.raises(C2SError, match="have no name in var\\['feature_name'\\]"):
        c2s.io.convert(str(tmp_path / "bad"), tmp_path / "ds_bad")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"obs_value_filter": "cell_type == 'no such type'"}, "selects no cells"),
        ({"measurement": "ATAC"}, "no measurement 'ATAC'; available: \\['RNA'\\]"),
        ({"x_name": "counts"}, "no X layer 'counts'; available: \\['data'\\]"),
        ({"obs_value_filter": "cell_typ == 'B'"}, "Bad filter .*cell_typ does not exist"),
        ({"obs_value_filter": "cell_type === 3"}, "Bad filter .*parse"),
        ({"layer": "counts"}, "measurement= and x_name="),
    ],
)
def test_bad_queries_say_what_is_wrong_and_write_nothing(soma_pbmc, tmp_path, options, message):
    with pytest.raises(C2SError, match=message):
        c2s.io.convert(soma_pbmc / "pbmc_soma", tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_soma_options_on_an_h5ad_are_refused(soma_pbmc, tmp_path):
    with pytest.raises(C2SError, match="apply to TileDB-SOMA experiments"):
        c2s.io.convert(soma_pbmc / "pbmc.h5ad", tmp_path / "o", obs_value_filter="x == 1")


def test_convert_cli_reads_a_soma_query(soma_pbmc, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["convert", str(soma_pbmc / "pbmc_soma"), str(out), "--measurement", "RNA",
            "--x-name", "data", "--obs-filter", "n_counts > 3000", "--obs", "cell_type",
            "--json"]  # fmt: skip
    assert main(argv) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_cells"] > 0
    code = main(["convert", str(soma_pbmc / "pbmc_soma"), str(tmp_path / "bad"),
                 "--obs-filter", "n_counts > 1e12"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "selects no cells" in err and err.count("\n") == 1
    assert not (tmp_path / "bad").exists()


def test_predict_and_embed_from_a_soma_query_join_back_on_soma_joinid(
    soma_pbmc, trained_model, tmp_path, _pbmc
):
    pytest.importorskip("torch")
    import shutil

    import pandas as pd
    import pyarrow as pa

    uri = str(shutil.copytree(soma_pbmc / "pbmc_soma", tmp_path / "exp"))  # it gets written to
    query = ["--obs-filter", "cell_type == 'CD19+ B' or cell_type == 'CD56+ NK'"]
    csv = tmp_path / "pred.csv"
    assert main(["predict", str(trained_model), uri, *query, "--out", str(csv)]) == 0
    pred = pd.read_csv(csv)
    chosen = np.flatnonzero(_pbmc.obs["cell_type"].isin(["CD19+ B", "CD56+ NK"]).to_numpy())
    assert sorted(pred["soma_joinid"]) == list(chosen)
    assert list(pred["cell_id"]) == list(_pbmc.obs_names[pred["soma_joinid"]])
    # the same cells read as an AnnData predict the same labels
    adata = c2s.io.read_soma(uri, obs_value_filter=query[1])
    ref = c2s.tl.predict(adata, str(trained_model), inplace=False)
    assert list(ref["c2s_prediction"]) == list(pred["c2s_prediction"])
    out = tmp_path / "emb.h5ad"
    assert main(["embed", str(trained_model), uri, *query, "--out", str(out)]) == 0
    import anndata as ad

    emb = ad.read_h5ad(out)
    assert list(emb.obs["soma_joinid"]) == list(chosen)
    # written back into the experiment as an obsm array of the chosen cells (README recipe)
    X = emb.obsm["X_c2s"]
    rows, cols = np.nonzero(np.ones_like(X, dtype=bool))
    with tiledbsoma.Experiment.open(uri) as exp:
        n_obs = exp.obs.count
    with tiledbsoma.Experiment.open(uri, "w") as exp:
        obsm = (
            exp.ms["RNA"].obsm
            if "obsm" in exp.ms["RNA"]
            else exp.ms["RNA"].add_new_collection("obsm")
        )
        arr = obsm.add_new_sparse_ndarray(
            "c2s_embedding", type=pa.float32(), shape=(n_obs, X.shape[1])
        )
        arr.write(pa.Table.from_pydict({
            "soma_dim_0": emb.obs["soma_joinid"].to_numpy()[rows],
            "soma_dim_1": cols.astype(np.int64),
            "soma_data": X[rows, cols].astype(np.float32),
        }))  # fmt: skip
    with tiledbsoma.Experiment.open(uri) as exp:
        back = exp.ms["RNA"].obsm["c2s_embedding"].read().coos().concat().to_scipy().tocsr()
    assert np.allclose(back[chosen].toarray(), X)
