"""c2s.sources: one open_source for every kind of input (an AnnData, an .h5ad, a SOMA query,
several files) giving the same cells, gene names and rows as the data they came from; the one
gene-name check and its messages; the old spellings of renamed arguments warn and work."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import c2s
from c2s import C2SError
from c2s.sources import (
    MatrixSource,
    MultiSource,
    SomaSource,
    check_gene_names,
    open_matrix,
    open_source,
)


def _rows(src, chunk: int = 97) -> sp.csr_matrix:
    """Every row of ``src``, read block by block."""
    blocks = [
        sp.csr_matrix((d, i, p - p[0]), shape=(b - a, src.shape[1]))
        for a, b, p, i, d in src.iter_rows(0, src.n_obs, chunk)
    ]
    return sp.vstack(blocks, format="csr")


def _same_matrix(a, b) -> None:
    a, b = sp.csr_matrix(a), sp.csr_matrix(b)
    assert a.shape == b.shape and (a != b).nnz == 0


# -- every kind of input ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["memory", "path", "backed", "dense", "list of one"])
def test_an_anndata_or_h5ad_gives_its_cells_genes_and_rows(kind, pbmc, tmp_path):
    import anndata as ad

    path = tmp_path / "pbmc.h5ad"
    pbmc.write_h5ad(path)
    data = {
        "memory": pbmc,
        "path": path,
        "backed": ad.read_h5ad(path, backed="r"),
        "dense": ad.AnnData(X=pbmc.X.toarray(), obs=pbmc.obs, var=pbmc.var),
        "list of one": [str(path)],
    }[kind]
    src = open_source(data)
    assert type(src) is MatrixSource and src.shape == pbmc.shape and src.n_obs == pbmc.n_obs
    assert list(src.gene_names()) == list(pbmc.var_names)
    assert list(src.obs.index) == list(pbmc.obs_names)
    _same_matrix(_rows(src), pbmc.X)
    _same_matrix(src.read_rows(10, 20), pbmc.X[10:20])
    assert src.label == "adata.X" and src.in_memory == (kind in ("memory", "dense"))
    assert src.reopenable == (kind not in ("memory", "dense"))
    want_file = None if kind in ("memory", "dense") else "pbmc.h5ad"
    assert src.provenance() == {"file": want_file, "matrix": "adata.X", "var_names": None}


def test_a_layer_raw_or_var_column_is_what_is_read(scaled_adata, lognorm_adata):
    for kw in ({"use_raw": True}, {"layer": "lognorm"}):
        src = open_source(scaled_adata, **kw)
        _same_matrix(_rows(src), lognorm_adata.X)
    assert open_source(scaled_adata, use_raw=True).label == "adata.raw.X"
    assert open_source(scaled_adata, layer="lognorm").label == "adata.layers['lognorm']"
    assert open_source(scaled_adata).other_matrices == [
        "adata.raw (--raw)",
        "layer 'lognorm' (--layer lognorm)",
    ]
    lognorm_adata.var["symbol"] = [f"SYM{i}" for i in range(lognorm_adata.n_vars)]
    src = open_source(lognorm_adata, var_names="symbol")
    assert src.gene_names()[:2].tolist() == ["SYM0", "SYM1"]
    assert src.provenance()["var_names"] == "symbol"


def test_several_files_are_their_cells_in_order_on_the_shared_genes(pbmc, tmp_path):
    a, b = pbmc[:300].copy(), pbmc[300:, ::-1].copy()  # the second file's genes reversed
    a.write_h5ad(tmp_path / "a.h5ad")
    b.write_h5ad(tmp_path / "b.h5ad")
    src = open_source([tmp_path / "a.h5ad", b], source_key="batch")
    assert isinstance(src, MultiSource) and src.shape == pbmc.shape
    assert list(src.gene_names()) == list(pbmc.var_names)  # the first file's order
    assert list(src.obs.index) == list(pbmc.obs_names)
    assert list(src.obs["batch"].astype(str)) == ["a.h5ad"] * 300 + ["input 1"] * 400
    _same_matrix(_rows(src), pbmc.X)
    _same_matrix(src.read_rows(290, 310), pbmc.X[290:310])  # across the two files
    assert not src.reopenable  # one of them is held in this process
    assert src.always_carried == ("batch",)
    assert src.provenance() == {
        "file": ["a.h5ad", "input 1"],
        "matrix": "adata.X of 2 inputs",
        "var_names": None,
        "genes": {"mode": "same", "inputs": {}},
    }


def test_several_files_with_other_genes_are_joined_on_request(pbmc, tmp_path):
    a, b = pbmc[:200, 100:].copy(), pbmc[200:400, :700].copy()
    with pytest.warns(UserWarning, match="input 0: 100 of the 765 genes absent"):
        src = open_source([a, b], genes="union")
    assert list(src.gene_names()) == [*pbmc.var_names[100:], *pbmc.var_names[:100]]
    whole = _rows(src)
    _same_matrix(whole[:200, :665], a.X)
    assert whole[:200, 665:].nnz == 0  # genes a file lacks are not expressed in its cells
    assert src.report["inputs"]["input 1"] == {"genes": 700, "absent": 65, "left_out": 0}


def test_a_soma_query_gives_the_cells_and_genes_it_selects(pbmc, tmp_path):
    tiledbsoma_io = pytest.importorskip("tiledbsoma.io")
    uri = str(tmp_path / "soma")
    tiledbsoma_io.from_anndata(uri, pbmc, measurement_name="RNA")
    src = open_source(uri)
    assert isinstance(src, SomaSource) and src.shape == pbmc.shape
    assert list(src.gene_names()) == list(pbmc.var_names)
    assert list(src.obs.index) == list(pbmc.obs_names)
    _same_matrix(_rows(src), pbmc.X)
    assert src.reopenable and not src.in_memory
    assert src.provenance() == {
        "file": None,
        "soma": uri,
        "matrix": f"SOMA {uri} ms['RNA'].X['data']",
        "var_names": None,
    }
    genes = list(pbmc.var_names[::5])
    src = open_source(
        uri, obs_value_filter="cell_type == 'CD19+ B'", var_value_filter=f"var_id in {genes}"
    )
    cells = (pbmc.obs["cell_type"] == "CD19+ B").to_numpy()
    assert list(src.gene_names()) == genes and list(src.obs.index) == list(pbmc.obs_names[cells])
    _same_matrix(_rows(src, 7), pbmc[cells, genes].X)
    adata = c2s.io.read_soma(uri, obs_value_filter="cell_type == 'CD19+ B'")
    _same_matrix(adata.X, pbmc[cells].X)
    assert list(adata.var_names) == list(pbmc.var_names)


@pytest.mark.parametrize(
    ("data", "options", "message"),
    [
        ([], {}, "Several inputs must be AnnData objects or .h5ad files"),
        ("soma", {"layer": "x"}, "chosen by measurement= and x_name="),
        ("h5ad", {"x_name": "raw"}, "apply to TileDB-SOMA experiments"),
        ("h5ad", {"layer": "a", "use_raw": True}, "Choose either a layer or .raw, not both."),
        ("nothing.h5ad", {}, "does not exist"),
        (3, {}, "Expected an AnnData object or an .h5ad path, got int."),
    ],
)
def test_inputs_that_cannot_be_read_are_refused(data, options, message, pbmc, tmp_path):
    if data == "h5ad":
        data = tmp_path / "x.h5ad"
        pbmc.write_h5ad(data)
    elif data == "soma":
        tiledbsoma_io = pytest.importorskip("tiledbsoma.io")
        data = str(tmp_path / "soma")
        tiledbsoma_io.from_anndata(data, pbmc[:20].copy(), measurement_name="RNA")
    elif data == "nothing.h5ad":
        data = tmp_path / data
    with pytest.raises(C2SError, match=message):
        open_source(data, **options)


# -- the one gene-name check ---------------------------------------------------------------------
BAD_NAMES = [
    (
        ["A", "B", "A"],
        "1 gene names in {w} are duplicated (e.g. 'A'). Each gene must have one "
        "name; run adata.var_names_make_unique() or aggregate the duplicated genes first.",
    ),
    (["A", ""], "1 gene names in {w} are empty strings; name every gene."),
    (
        ["A", "B C"],
        "1 gene names in {w} contain whitespace (e.g. 'B C'), which would split "
        "them in a cell sentence. Replace it, e.g. adata.var_names = "
        "adata.var_names.str.replace(r'\\s+', '_', regex=True).",
    ),
]


@pytest.mark.parametrize(("names", "message"), BAD_NAMES)
def test_the_gene_name_check_refuses_with_the_same_message_everywhere(names, message, tmp_path):
    import anndata as ad

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata's own note on repeated names
        adata = ad.AnnData(X=sp.csr_matrix(np.ones((2, len(names)), dtype=np.float32)))
        adata.var_names = names
        other = adata.copy()
    other.obs_names = ["x", "y"]
    w = "the gene names of adata.X"
    calls = [
        lambda: check_gene_names(names, where=w),
        lambda: open_source(adata).gene_names(),
        lambda: c2s.sentences.from_anndata(adata),
        lambda: c2s.io.convert(adata, tmp_path / "out"),
    ]
    for call in calls:
        with pytest.raises(C2SError) as e:
            call()
        assert str(e.value) == message.format(w=w)
    assert not (tmp_path / "out").exists()
    with pytest.raises(C2SError) as e:
        open_source([adata, other])
    assert str(e.value) == message.format(w="the gene names of input 0")


def test_var_column_choice_is_checked(pbmc):
    with pytest.raises(C2SError) as e:
        open_source(pbmc, var_names="nope").gene_names()
    assert str(e.value) == "var has no column 'nope' to take gene names from; available: []."
    pbmc.var["symbol"] = list(pbmc.var_names)
    pbmc.var.loc[pbmc.var_names[1], "symbol"] = " "
    with pytest.raises(C2SError) as e:
        open_source(pbmc, var_names="symbol").gene_names()
    assert str(e.value) == (
        f"1 genes have no name in var['symbol'] (e.g. [{pbmc.var_names[1]!r}]); fill them in "
        "(for example from the var index) or take names from another column."
    )
    with pytest.raises(C2SError, match=r"adata\.var_names is empty: the data has no genes\."):
        check_gene_names([])


def test_odd_gene_names_are_warned_about():
    with pytest.warns(UserWarning, match="look like Ensembl IDs"):
        check_gene_names([f"ENSG{i:011d}" for i in range(10)])
    with pytest.warns(UserWarning, match="differ only by case"):
        names = check_gene_names(["Actb", "ACTB"])
    assert names.dtype == object and list(names) == ["Actb", "ACTB"]
    assert c2s.sentences.check_gene_names is check_gene_names  # one rule, two addresses


def test_a_source_of_a_mislabelled_matrix_reads_with_the_open_file(pbmc, tmp_path):
    """A CSC .h5ad is read, with a warning that it streams badly."""
    pbmc.X = sp.csc_matrix(pbmc.X)
    pbmc.write_h5ad(tmp_path / "csc.h5ad")
    with pytest.warns(UserWarning, match="stored column-wise"):
        src = open_matrix(tmp_path / "csc.h5ad")
    _same_matrix(_rows(src), pbmc.X)


# -- renamed arguments -----------------------------------------------------------------------------
def _warns_renamed(old: str, new: str):
    return pytest.warns(FutureWarning, match=f"{old} is now called {new}")


def test_old_argument_names_warn_and_work(lognorm_adata, tmp_path):
    new = c2s.io.convert(
        lognorm_adata, tmp_path / "new", n_genes=7, split_fractions=(0.5, 0.25, 0.25)
    )
    with (
        _warns_renamed("top_k=", "n_genes="),
        _warns_renamed("split=", "split_fractions="),
        _warns_renamed("out_dir=", "out="),
    ):
        old = c2s.io.convert(
            lognorm_adata, out_dir=tmp_path / "old", top_k=7, split=(0.5, 0.25, 0.25)
        )
    assert old.texts() == new.texts()
    assert np.array_equal(old.split_codes(), new.split_codes())
    assert old.meta["ranking"]["top_k"] == 7  # the metadata key stays
    with pytest.raises(C2SError, match=r"Give n_genes= only \(top_k= is its old name\)"):
        c2s.io.convert(lognorm_adata, tmp_path / "both", top_k=3, n_genes=3)
    with _warns_renamed("top_k=", "n_genes="):
        cs = new.sentences(top_k=3)
    np.testing.assert_array_equal(cs.genes, new.sentences(n_genes=3).genes)
    with _warns_renamed("top_k=", "n_genes="):
        X, _ = c2s.baselines.expression(new, split="test", top_k=3)
    _same_matrix(X, c2s.baselines.expression(new, split="test", n_genes=3)[0])
    with _warns_renamed("top_k=", "n_genes="):
        a = c2s.sentences.from_anndata(lognorm_adata, top_k=5)
    np.testing.assert_array_equal(
        a.genes, c2s.sentences.from_anndata(lognorm_adata, n_genes=5).genes
    )
    with _warns_renamed("top_k=", "n_genes="):
        r = c2s.sentences.rank(lognorm_adata.X, top_k=5)
    np.testing.assert_array_equal(r.genes, a.genes)
    with _warns_renamed(r"CellSentences.top_k\(k\)", r"CellSentences.top_genes\(n_genes\)"):
        t = a.top_k(2)
    np.testing.assert_array_equal(t.genes, a.top_genes(2).genes)
    with _warns_renamed("ds=", "dataset="):
        assert c2s.io.check_dataset(ds=new)["ok"]


def test_write_sentences_and_the_reference_layout_take_the_new_names(lognorm_adata, tmp_path):
    cs = c2s.sentences.from_anndata(lognorm_adata)
    new = c2s.io.write_sentences(cs, tmp_path / "new", split_fractions=(0.6, 0.2, 0.2))
    with _warns_renamed("out_dir=", "out="), _warns_renamed("split=", "split_fractions="):
        old = c2s.io.write_sentences(cs, out_dir=tmp_path / "old", split=(0.6, 0.2, 0.2))
    assert np.array_equal(old.split_codes(), new.split_codes())
    pytest.importorskip("datasets")
    ref = c2s.io.export_reference(new, tmp_path / "ref")
    with _warns_renamed("out_dir=", "out="):
        c2s.io.export_reference(new.path, out_dir=tmp_path / "ref_old")
    back = c2s.io.import_reference(ref, tmp_path / "back", split_fractions=(0.6, 0.2, 0.2))
    with _warns_renamed("split=", "split_fractions="):
        old_back = c2s.io.import_reference(ref, tmp_path / "back_old", split=(0.6, 0.2, 0.2))
    assert back.texts() == old_back.texts() == new.texts()


def test_read_dataset_opens_and_the_class_itself_warns(lognorm_adata, tmp_path):
    ds = c2s.io.convert(lognorm_adata[:50].copy(), tmp_path / "ds")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opened = c2s.io.read_dataset(tmp_path / "ds")
    assert isinstance(opened, c2s.io.C2SDataset) and opened.n_cells == ds.n_cells == 50
    with pytest.warns(FutureWarning, match=r"read_dataset\(path\)") as caught:
        direct = c2s.io.C2SDataset(tmp_path / "ds")
    assert caught[0].filename == __file__  # it points at the caller's line
    assert direct.texts() == opened.texts()
    with pytest.raises(C2SError, match="is not a c2s dataset"):
        c2s.io.read_dataset(tmp_path)
