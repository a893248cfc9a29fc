"""The Parquet dataset store: convert, read back, splits, Hugging Face, atomic outputs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from _helpers import assert_no_output

import c2s
import c2s.io._shards as shards
from c2s._errors import C2SError, OutputExistsError
from c2s.io import SPLITS, C2SDataset, assign_splits, convert, read_dataset


def tree_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(path).iterdir())}


def assert_same_sentences(a, b, *, values=True):
    np.testing.assert_array_equal(a.genes, b.genes)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    if values:
        np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.vocab.genes, b.vocab.genes)
    np.testing.assert_array_equal(a.vocab.n_cells_expressed, b.vocab.n_cells_expressed)


@pytest.fixture(scope="module")
def lognorm_h5ad(tmp_path_factory, _lognorm):
    path = tmp_path_factory.mktemp("h5ad") / "lognorm.h5ad"
    _lognorm.copy().write_h5ad(path)  # (writing turns string columns into categoricals)
    return path


@pytest.fixture(scope="module")
def converted(tmp_path_factory, _lognorm):
    """One dataset of the log-normalized fixture with default settings."""
    return convert(_lognorm, tmp_path_factory.mktemp("ds") / "ds", shard_size=150)


# ---------------------------------------------------------------------------------------
# equivalence of inputs and settings
# ---------------------------------------------------------------------------------------
def test_anndata_to_dataset_equals_from_anndata(lognorm_adata, converted):
    ref = c2s.sentences.from_anndata(lognorm_adata, seed=0)
    cs = converted.sentences()
    assert_same_sentences(cs, ref)
    assert list(cs.vocab.display_names) == [g.upper() for g in lognorm_adata.var_names]
    assert list(cs.obs.index) == list(lognorm_adata.obs_names)
    for col in lognorm_adata.obs.columns:
        assert list(cs.obs[col].astype(str)) == list(lognorm_adata.obs[col].astype(str))
    assert len(converted) == converted.n_cells == lognorm_adata.n_obs
    assert converted.meta["n_genes"] == lognorm_adata.n_vars
    assert [s["n_cells"] for s in converted.meta["shards"]] == [150, 150, 100]
    assert len(converted.files) == 3 and all(f.exists() for f in converted.files)
    lengths = np.diff(lognorm_adata.X.indptr)
    assert converted.meta["lengths"]["max"] == lengths.max()
    assert converted.meta["lengths"]["mean"] == pytest.approx(lengths.mean())
    assert converted.meta["source"]["expression"] == "log-normalized"


def test_in_memory_file_and_backed_give_identical_sentences(
    tmp_path, lognorm_h5ad, lognorm_adata, converted
):
    ref = converted.sentences()
    from_file = convert(lognorm_h5ad, tmp_path / "file", shard_size=150, chunk_size=64)
    backed = ad.read_h5ad(lognorm_h5ad, backed="r")
    try:
        from_backed = convert(backed, tmp_path / "backed", shard_size=150)
    finally:
        backed.file.close()
    for ds in (from_file, from_backed):
        cs = ds.sentences()
        assert_same_sentences(cs, ref)
        assert list(cs.obs.index) == list(ref.obs.index)
        assert list(cs.obs.columns) == list(ref.obs.columns)
        for col in ref.obs.columns:
            assert list(cs.obs[col].astype(str)) == list(ref.obs[col].astype(str))
        assert ds.meta["source"]["file"] == "lognorm.h5ad"
    assert tree_bytes(from_file.path).keys() == tree_bytes(converted.path).keys()


def test_outputs_byte_identical_across_chunks_and_workers(tmp_path, lognorm_adata):
    runs = {}
    for chunk, workers in [(37, 1), (500, 1), (lognorm_adata.n_obs, 1), (37, 2)]:
        out = tmp_path / f"c{chunk}-w{workers}"
        convert(lognorm_adata, out, chunk_size=chunk, workers=workers, shard_size=128)
        runs[(chunk, workers)] = tree_bytes(out)
    first = next(iter(runs.values()))
    assert len([k for k in first if k.startswith("cells-")]) == 4
    for files in runs.values():
        assert files == first


def test_file_input_byte_identical_with_process_workers(tmp_path, lognorm_h5ad):
    a = convert(lognorm_h5ad, tmp_path / "w1", chunk_size=37, shard_size=128, workers=1)
    b = convert(lognorm_h5ad, tmp_path / "w2", chunk_size=500, shard_size=128, workers=2)
    assert tree_bytes(a.path) == tree_bytes(b.path)


@pytest.mark.parametrize("storage", ["dense", "csc"])
def test_other_h5ad_storage(tmp_path, lognorm_adata, converted, storage):
    a = lognorm_adata.copy()
    a.X = a.X.toarray() if storage == "dense" else sp.csc_matrix(a.X)
    path = tmp_path / "in.h5ad"
    a.write_h5ad(path)
    if storage == "csc":
        with pytest.warns(UserWarning, match="CSC"):
            ds = convert(path, tmp_path / "out", shard_size=150, chunk_size=100)
    else:
        ds = convert(path, tmp_path / "out", shard_size=150, chunk_size=100)
    assert_same_sentences(ds.sentences(), converted.sentences())


def test_layer_and_raw_selection(tmp_path, scaled_adata, lognorm_h5ad, converted):
    ref = converted.sentences()
    path = tmp_path / "scaled.h5ad"
    scaled_adata.write_h5ad(path)
    for i, (data, kw) in enumerate(
        [
            (scaled_adata, {"layer": "lognorm"}),
            (scaled_adata, {"use_raw": True}),
            (path, {"layer": "lognorm"}),
            (path, {"use_raw": True}),
        ]
    ):
        ds = convert(data, tmp_path / f"out{i}", **kw)
        assert_same_sentences(ds.sentences(), ref)
    assert ds.meta["source"]["matrix"] == "adata.raw.X"
    with pytest.raises(C2SError, match=r"no adata\.layers"):
        convert(path, tmp_path / "bad", layer="missing")
    assert_no_output(tmp_path / "bad")


def test_n_genes(tmp_path, lognorm_adata, converted):
    ds = convert(lognorm_adata, tmp_path / "top", n_genes=20)
    cs = ds.sentences()
    full = converted.sentences()
    assert_same_sentences(cs.take(np.arange(cs.n_cells)), full.top_genes(20), values=True)
    assert cs.lengths.max() == 20
    assert ds.meta["ranking"]["top_k"] == 20
    # counts of expressing cells are over all genes, not only the top 20
    np.testing.assert_array_equal(
        ds.vocab.n_cells_expressed, np.asarray((lognorm_adata.X > 0).sum(axis=0)).ravel()
    )
    s5 = converted.sentences(n_genes=5)
    np.testing.assert_array_equal(s5.genes, full.top_genes(5).genes)


def test_without_values(tmp_path, lognorm_adata, converted):
    ds = convert(lognorm_adata, tmp_path / "nv", with_values=False)
    assert not ds.has_values
    cs = ds.sentences()
    assert cs.values is None
    np.testing.assert_array_equal(cs.genes, converted.sentences().genes)


def test_normalize_stores_log10_values(tmp_path, counts_adata, lognorm_adata, converted):
    before = counts_adata.X.copy()
    ds = convert(counts_adata, tmp_path / "norm", normalize=True)
    assert (before != counts_adata.X).nnz == 0  # the input is not normalized in place
    assert ds.meta["normalization"]["applied_by"] == "c2s"
    cs = ds.sentences()
    ref = converted.sentences()
    np.testing.assert_array_equal(cs.offsets, ref.offsets)
    np.testing.assert_allclose(cs.values, ref.values, rtol=1e-6)
    # counts and their normalization rank alike within a cell, ties included
    for i in (0, 1, 200):
        a = dict(zip(cs.cell(i), cs.cell_values(i), strict=True))
        b = dict(zip(ref.cell(i), ref.cell_values(i), strict=True))
        assert a.keys() == b.keys()


# ---------------------------------------------------------------------------------------
# obs, splits, reading
# ---------------------------------------------------------------------------------------
def test_obs_columns_carried(tmp_path, lognorm_adata, converted):
    assert converted.obs_columns == list(lognorm_adata.obs.columns)
    ds = convert(lognorm_adata, tmp_path / "obs", obs_keys=["cell_type", "donor"])
    assert ds.obs_columns == ["cell_type", "donor"]
    obs = ds.obs()
    assert list(obs.columns) == ["split", "cell_type", "donor"]
    assert list(obs.index) == list(lognorm_adata.obs_names)
    assert list(obs["cell_type"].astype(str)) == list(lognorm_adata.obs["cell_type"].astype(str))
    assert set(obs["split"].astype(str)) == set(SPLITS)
    cs = ds.sentences(obs_columns=["donor"])
    assert list(cs.obs.columns) == ["split", "donor"]


def test_split_seeded_reproducible_and_respects_fractions(tmp_path, lognorm_adata):
    n = lognorm_adata.n_obs
    a = convert(
        lognorm_adata, tmp_path / "a", seed=3, split_fractions=(0.7, 0.2, 0.1), shard_size=150
    )
    b = convert(lognorm_adata, tmp_path / "b", seed=3, split_fractions="0.7,0.2,0.1", chunk_size=50)
    c = convert(lognorm_adata, tmp_path / "c", seed=4, split_fractions=(0.7, 0.2, 0.1))
    codes = a.split_codes()
    np.testing.assert_array_equal(codes, b.split_codes())
    np.testing.assert_array_equal(codes, assign_splits(n, (0.7, 0.2, 0.1), seed=3))
    assert not np.array_equal(codes, c.split_codes())
    np.testing.assert_array_equal(np.bincount(codes, minlength=3), [280, 80, 40])
    assert a.meta["split"]["counts"] == {"train": 280, "validation": 80, "test": 40}
    idx = a.split_indices()
    assert sorted(np.concatenate(list(idx.values())).tolist()) == list(range(n))
    test = a.sentences(split="test")
    whole = a.sentences()
    np.testing.assert_array_equal(test.genes, whole.take(idx["test"]).genes)
    assert set(test.obs["split"].astype(str)) == {"test"}
    rows = a.sentences(rows=[5, 1, 399])
    np.testing.assert_array_equal(rows.offsets, whole.take([5, 1, 399]).offsets)
    with pytest.raises(C2SError, match="Unknown split"):
        a.sentences(split="dev")
    with pytest.raises(C2SError, match="either"):
        a.sentences(split="test", rows=[1])


def test_stratified_split_keeps_every_label_in_train(tmp_path, lognorm_adata):
    obs = lognorm_adata.obs
    rare = obs.index[:2]
    obs["cell_type"] = obs["cell_type"].cat.add_categories(["rare"])
    obs.loc[rare, "cell_type"] = "rare"
    with pytest.warns(UserWarning, match=r"too few cells .*: rare \(2 cells\)"):
        ds = convert(lognorm_adata, tmp_path / "s", stratify="cell_type", seed=1)
    o = ds.obs()
    for label, grp in o.groupby("cell_type", observed=True):
        assert (grp["split"].astype(str) == "train").any(), label
    with pytest.warns(UserWarning, match="too few cells"):
        again = assign_splits(len(obs), seed=1, stratify=obs["cell_type"])
    np.testing.assert_array_equal(ds.split_codes(), again)
    assert ds.meta["split"]["stratify"] == "cell_type"
    with pytest.raises(C2SError, match="stratify"):
        convert(lognorm_adata, tmp_path / "bad", stratify="nope")
    assert_no_output(tmp_path / "bad")


def test_texts_are_upper_cased_names(lognorm_adata, converted):
    names = np.asarray(lognorm_adata.var_names)
    cs = converted.sentences()
    texts = converted.texts()
    assert texts == [" ".join(g.upper() for g in names[cs.cell(i)]) for i in range(cs.n_cells)]
    assert converted.texts(3)[0].split() == texts[0].split()[:3]
    val = converted.texts(split="validation")
    vidx = converted.split_indices()["validation"]
    assert val == [texts[i] for i in vidx]


def test_to_hf(converted, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf"))
    full = converted.to_hf()
    assert isinstance(full, datasets.Dataset) and len(full) == converted.n_cells
    val = converted.to_hf(split="validation")
    idx = converted.split_indices()["validation"]
    assert len(val) == len(idx)
    obs = converted.obs()
    assert val["cell_id"] == list(obs.index[idx])
    cs = converted.sentences()
    assert val[0]["genes"] == cs.cell(int(idx[0])).tolist()
    assert "values" in val.column_names and "cell_type" in val.column_names
    with pytest.raises(C2SError, match="Unknown split"):
        converted.to_hf(split="dev")


def test_read_dataset_and_info(converted, tmp_path):
    ds = read_dataset(converted.path)
    assert isinstance(ds, C2SDataset)
    info = ds.info()
    assert info["n_cells"] == converted.n_cells and info["n_shards"] == 3
    assert info["split"] == converted.meta["split"]["counts"]
    with pytest.raises(C2SError, match="not a c2s dataset"):
        read_dataset(tmp_path)


def test_write_sentences_round_trip(tmp_path, converted):
    cs = converted.sentences()
    ds = c2s.io.write_sentences(
        cs, tmp_path / "ws", split_codes=converted.split_codes(), shard_size=64
    )
    back = ds.sentences()
    assert_same_sentences(back, cs)
    pd.testing.assert_frame_equal(back.obs, cs.obs)


# ---------------------------------------------------------------------------------------
# errors leave nothing behind
# ---------------------------------------------------------------------------------------
def test_existing_output_is_refused(tmp_path, lognorm_adata):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="overwrite"):
        convert(lognorm_adata, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".c2s-tmp-")]
    # --overwrite replaces only what c2s made: a directory of the user's is kept
    with pytest.raises(C2SError, match="only replaces outputs it wrote"):
        convert(lognorm_adata, out, overwrite=True)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    mine = convert(lognorm_adata, tmp_path / "ds2", seed=1)
    ds = convert(lognorm_adata, mine.path, overwrite=True)
    assert ds.n_cells == lognorm_adata.n_obs and ds.meta["ranking"]["seed"] == 0


@pytest.mark.parametrize("as_file", [False, True])
def test_scaled_x_is_refused_with_alternatives(tmp_path, scaled_adata, as_file):
    scaled_adata.layers["counts"] = scaled_adata.layers["lognorm"].copy()
    data = scaled_adata
    if as_file:
        data = tmp_path / "scaled.h5ad"
        scaled_adata.write_h5ad(data)
    out = tmp_path / "out"
    with pytest.raises(C2SError, match="scaled") as e:
        convert(data, out)
    msg = str(e.value)
    assert "--raw" in msg
    assert "adata.raw (--raw)" in msg
    assert "layer 'lognorm' (--layer lognorm)" in msg and "layer 'counts'" in msg
    assert_no_output(out)


def test_nan_is_refused(tmp_path, lognorm_adata):
    lognorm_adata.X.data[5] = np.nan
    with pytest.raises(C2SError, match="NaN"):
        convert(lognorm_adata, tmp_path / "out")
    assert_no_output(tmp_path / "out")


def test_nan_after_the_sampled_rows_is_refused_mid_write(tmp_path):
    a = c2s.datasets.synthetic(2100, 300, genes_per_cell=40, normalize=True, seed=2)
    X = a.X
    X.data[X.indptr[2050]] = np.nan  # past the 2000 rows checked up front
    with pytest.raises(C2SError, match="NaN"):
        convert(a, tmp_path / "out", chunk_size=300, shard_size=700)
    assert_no_output(tmp_path / "out")


def test_duplicate_gene_names_are_refused(tmp_path, lognorm_adata):
    names = list(lognorm_adata.var_names)
    names[3] = names[0]
    lognorm_adata.var_names = names
    with pytest.raises(C2SError, match="var_names_make_unique"):
        convert(lognorm_adata, tmp_path / "out")
    assert_no_output(tmp_path / "out")


def test_gene_names_with_spaces_are_refused(tmp_path, lognorm_adata):
    names = list(lognorm_adata.var_names)
    names[7] = "HLA DRA"
    lognorm_adata.var_names = names
    with pytest.raises(C2SError, match="whitespace"):
        convert(lognorm_adata, tmp_path / "out")
    assert_no_output(tmp_path / "out")


def test_unknown_obs_column_is_refused(tmp_path, lognorm_adata):
    with pytest.raises(C2SError, match="no column") as e:
        convert(lognorm_adata, tmp_path / "out", obs_keys=["cell_type", "batch"])
    assert "'batch'" in str(e.value)
    assert_no_output(tmp_path / "out")


@pytest.mark.parametrize("obs_keys", [None, ["split"]])
def test_obs_column_named_split_is_reserved(tmp_path, lognorm_adata, obs_keys):
    lognorm_adata.obs["split"] = "train"
    with pytest.raises(C2SError, match="reserved"):
        convert(lognorm_adata, tmp_path / "out", obs_keys=obs_keys)
    assert_no_output(tmp_path / "out")
    ds = convert(lognorm_adata, tmp_path / "ok", obs_keys=["cell_type"])
    assert ds.obs_columns == ["cell_type"]


def test_normalize_on_non_counts_is_refused(tmp_path, lognorm_adata):
    with pytest.raises(C2SError, match="expects raw counts"):
        convert(lognorm_adata, tmp_path / "out", normalize=True)
    assert_no_output(tmp_path / "out")


def test_raw_counts_without_normalize_warn(tmp_path, counts_adata):
    with pytest.warns(UserWarning, match="raw counts"):
        ds = convert(counts_adata, tmp_path / "out")
    assert ds.meta["source"]["expression"] == "counts"
    np.testing.assert_array_equal(
        ds.sentences().values, c2s.sentences.from_anndata(counts_adata).values
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        convert(counts_adata, tmp_path / "norm", normalize=True)


def test_bad_sizes_are_refused(tmp_path, lognorm_adata):
    with pytest.raises(C2SError, match="positive"):
        convert(lognorm_adata, tmp_path / "out", chunk_size=0)
    assert_no_output(tmp_path / "out")


@pytest.mark.parametrize("workers", [1, 2])
def test_failure_mid_write_keeps_previous_output(tmp_path, lognorm_adata, monkeypatch, workers):
    out = tmp_path / "ds"
    convert(lognorm_adata, out, shard_size=100, seed=1)
    before = tree_bytes(out)
    run = shards.run_job

    def failing(job, *args, **kwargs):
        if job.shard == 1:
            raise RuntimeError("disk full")
        return run(job, *args, **kwargs)

    monkeypatch.setattr(shards, "run_job", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        convert(lognorm_adata, out, shard_size=100, overwrite=True, workers=workers)
    assert tree_bytes(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".c2s-tmp-")]
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError, match="disk full"):
        convert(lognorm_adata, fresh, shard_size=100)
    assert_no_output(fresh)
    meta = json.loads((out / "c2s_dataset.json").read_text())
    assert meta["ranking"]["seed"] == 1


def test_failed_convert_creates_no_parent_folders(tmp_path, scaled_adata):
    dest = tmp_path / "new" / "ds"
    with pytest.raises(C2SError):
        c2s.io.convert(scaled_adata, dest)
    assert not (tmp_path / "new").exists()


def test_rows_are_read_per_shard_in_the_order_asked(tmp_path, lognorm_adata):
    ds = convert(lognorm_adata, tmp_path / "ds", shard_size=70)
    assert len(ds.files) > 3
    full = ds.sentences()
    rows = np.array([250, 3, 71, 71, 399, 0])
    part = ds.sentences(rows=rows)
    assert list(part.obs.index) == [full.obs.index[i] for i in rows]
    for j, i in enumerate(rows):
        np.testing.assert_array_equal(part.cell(j), full.cell(i))
        np.testing.assert_array_equal(part.cell_values(j), full.cell_values(i))
    test = ds.sentences(split="test")
    assert (test.obs["split"] == "test").all() and test.n_cells == (
        full.obs["split"] == "test"
    ).sum()
    with pytest.raises(C2SError, match="Row indices"):
        ds.sentences(rows=[400])


def test_a_subsample_view_reads_only_its_cells(pbmc_dataset):
    idx = pbmc_dataset.split_indices()
    view = pbmc_dataset.subsample({"train": 100, "test": 1000}, seed=3, stratify="cell_type")
    vidx = view.split_indices()
    assert len(vidx["test"]) == len(idx["test"])  # under the cap: every cell
    assert np.array_equal(vidx["validation"], idx["validation"])  # not named: kept whole
    assert 90 <= len(vidx["train"]) <= 110 and set(vidx["train"]) <= set(idx["train"])
    labels = pbmc_dataset.obs(["cell_type"])["cell_type"].astype(str).to_numpy()
    assert set(labels[vidx["train"]]) == set(labels[idx["train"]])  # every type kept
    share = pd.Series(labels[vidx["train"]]).value_counts(normalize=True)
    full = pd.Series(labels[idx["train"]]).value_counts(normalize=True)
    assert (share - full).abs().max() < 0.05  # in proportion
    cs = view.sentences(split="train")
    assert cs.n_cells == len(vidx["train"])
    everything = view.sentences(values=False)  # no split: the view's cells only
    assert everything.n_cells == sum(len(v) for v in vidx.values())
    same = pbmc_dataset.subsample({"train": 100}, seed=3, stratify="cell_type")
    assert np.array_equal(same.split_indices()["train"], vidx["train"])
    assert pbmc_dataset.split_indices()["train"].size == idx["train"].size  # original untouched
    with pytest.raises(C2SError, match="Unknown split"):
        pbmc_dataset.subsample({"holdout": 3})
