"""CellSentences, Vocab and gene-name checks."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from _helpers import dense

import c2s
from c2s._errors import C2SError
from c2s.sentences import CellSentences, Vocab, check_gene_names, rank


# ---------------------------------------------------------------------------------------
# access, take, top_genes
# ---------------------------------------------------------------------------------------
def test_from_anndata_matches_rank(lognorm_adata, lognorm_sentences):
    cs = lognorm_sentences
    r = rank(lognorm_adata.X, seed=0)
    np.testing.assert_array_equal(cs.genes, r.genes)
    np.testing.assert_array_equal(cs.offsets, r.offsets)
    np.testing.assert_array_equal(cs.values, r.values)
    np.testing.assert_array_equal(cs.vocab.n_cells_expressed, r.n_expressed)
    np.testing.assert_array_equal(cs.vocab.genes, np.asarray(lognorm_adata.var_names))
    pd.testing.assert_frame_equal(cs.obs, lognorm_adata.obs)
    assert cs.n_cells == len(cs) == lognorm_adata.n_obs
    np.testing.assert_array_equal(cs.lengths, np.diff(lognorm_adata.X.indptr))


def test_positions_count_from_zero_in_each_cell(lognorm_sentences):
    cs = lognorm_sentences
    pos = cs.positions
    for i in (0, 1, 57, cs.n_cells - 1):
        np.testing.assert_array_equal(
            pos[cs.offsets[i] : cs.offsets[i + 1]], np.arange(cs.lengths[i])
        )


def test_take_by_indices_and_mask(lognorm_sentences):
    cs = lognorm_sentences
    idx = np.array([5, 0, 399, 17, 17])
    sub = cs.take(idx)
    assert sub.n_cells == len(idx)
    for j, i in enumerate(idx):
        np.testing.assert_array_equal(sub.cell(j), cs.cell(i))
        np.testing.assert_array_equal(sub.cell_values(j), cs.cell_values(i))
    assert list(sub.obs.index) == list(cs.obs.index[idx])
    mask = np.zeros(cs.n_cells, dtype=bool)
    mask[[3, 10, 200]] = True
    by_mask = cs.take(mask)
    np.testing.assert_array_equal(by_mask.genes, cs.take([3, 10, 200]).genes)
    np.testing.assert_array_equal(by_mask.offsets, cs.take([3, 10, 200]).offsets)


def test_top_genes_equals_ranking_with_n_genes(lognorm_adata, lognorm_sentences):
    cs = lognorm_sentences
    k = 25
    t = cs.top_genes(k)
    r = rank(lognorm_adata.X, seed=0, n_genes=k)
    np.testing.assert_array_equal(t.genes, r.genes)
    np.testing.assert_array_equal(t.offsets, r.offsets)
    np.testing.assert_array_equal(t.values, r.values)
    assert t.lengths.max() == k
    for i in (0, 99):
        np.testing.assert_array_equal(t.cell(i), cs.cell(i)[:k])
    with pytest.raises(C2SError, match="positive"):
        cs.top_genes(0)


def test_constructor_validates():
    v = Vocab.from_names(["a", "b", "c"])
    with pytest.raises(C2SError, match="offsets"):
        CellSentences(np.array([0, 1]), np.array([1, 2]), v)
    with pytest.raises(C2SError, match="offsets end"):
        CellSentences(np.array([0, 1]), np.array([0, 3]), v)
    with pytest.raises(C2SError, match="vocabulary"):
        CellSentences(np.array([0, 3]), np.array([0, 2]), v)
    with pytest.raises(C2SError, match="same length"):
        CellSentences(np.array([0, 1]), np.array([0, 2]), v, values=np.array([1.0]))
    with pytest.raises(C2SError, match="obs has"):
        CellSentences(np.array([0, 1]), np.array([0, 2]), v, obs=pd.DataFrame(index=["x", "y"]))
    with pytest.raises(C2SError, match="no expression values"):
        CellSentences(np.array([0, 1]), np.array([0, 2]), v).cell_values(0)


# ---------------------------------------------------------------------------------------
# text
# ---------------------------------------------------------------------------------------
def test_to_text_uses_upper_cased_names(lognorm_adata, lognorm_sentences):
    cs = lognorm_sentences
    names = np.asarray(lognorm_adata.var_names)
    texts = cs.to_text()
    assert len(texts) == cs.n_cells
    for i in (0, 42, 399):
        assert texts[i] == " ".join(n.upper() for n in names[cs.cell(i)])
    assert any(n != n.upper() for n in names)  # the data really is mixed case
    short = cs.to_text(3)
    assert short[42].split() == texts[42].split()[:3]
    assert cs.to_text(2, sep=",")[0] == ",".join(texts[0].split()[:2])


def test_text_round_trip_with_vocab(lognorm_sentences):
    cs = lognorm_sentences
    back = CellSentences.from_text(cs.to_text(), cs.vocab, obs=cs.obs)
    np.testing.assert_array_equal(back.genes, cs.genes)
    np.testing.assert_array_equal(back.offsets, cs.offsets)
    assert back.vocab.equals(cs.vocab)
    # full sentences hold every expressed gene once: the counts agree with the ranking's
    np.testing.assert_array_equal(back.vocab.n_cells_expressed, cs.vocab.n_cells_expressed)
    assert back.values is None
    pd.testing.assert_frame_equal(back.obs, cs.obs)
    # lower-case input maps to the same genes
    lower = CellSentences.from_text([t.lower() for t in cs.to_text(5)], cs.vocab)
    np.testing.assert_array_equal(lower.genes, cs.top_genes(5).genes)


def test_text_round_trip_without_vocab():
    texts = ["CD3D gapdh ACTB", "", "ACTB MS4A1", "cd3d"]
    cs = CellSentences.from_text(texts)
    assert list(cs.vocab.display_names) == ["CD3D", "GAPDH", "ACTB", "MS4A1"]
    np.testing.assert_array_equal(cs.lengths, [3, 0, 2, 1])
    assert cs.to_text() == [t.upper() for t in texts]
    np.testing.assert_array_equal(cs.vocab.n_cells_expressed, [2, 1, 2, 1])


def test_from_text_unknown_genes():
    v = Vocab.from_names(["A", "B", "C"])
    with pytest.raises(C2SError, match="not in the vocabulary"):
        CellSentences.from_text(["A ZZZ B"], v)
    cs = CellSentences.from_text(["A ZZZ B", "YYY", "C"], v, on_unknown="drop")
    np.testing.assert_array_equal(cs.genes, [0, 1, 2])
    np.testing.assert_array_equal(cs.offsets, [0, 2, 2, 3])


def test_to_csr_recovers_values_at_the_right_genes(lognorm_adata, lognorm_sentences):
    X = lognorm_sentences.to_csr()
    assert sp.issparse(X) and X.format == "csr"
    assert X.shape == lognorm_adata.shape
    expect = dense(lognorm_adata.X).astype(np.float32)
    np.testing.assert_array_equal(dense(X), np.where(expect > 0, expect, 0))
    assert X.has_sorted_indices


def test_to_csr_with_values_from_mixed_matrix():
    # stored zeros are not in sentences; the rest comes back in place
    D = np.array([[0.0, 3.0, 0.0, 2.0], [1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    X = sp.csr_matrix(D)
    X.data[X.data == 1.0] = 0.0  # explicit stored zeros
    X.data[X.data == 0.0] = 0.0
    r = rank(X)
    cs = CellSentences(r.genes, r.offsets, Vocab.from_names(list("abcd")), values=r.values)
    np.testing.assert_array_equal(cs.to_csr().toarray(), X.toarray())
    data = np.arange(1, len(cs.genes) + 1, dtype=np.float32)
    M = cs.to_csr(data).toarray()
    for i in range(cs.n_cells):
        np.testing.assert_array_equal(M[i, cs.cell(i)], data[cs.offsets[i] : cs.offsets[i + 1]])
    with pytest.raises(C2SError, match="no values"):
        CellSentences(r.genes, r.offsets, cs.vocab).to_csr()


# ---------------------------------------------------------------------------------------
# vocabulary and gene names
# ---------------------------------------------------------------------------------------
def test_vocab_upper_cases_display_but_keeps_names():
    v = Vocab.from_names(["Cd3d", "ACTB", "mt-Co1"], [3, 0, 1])
    assert list(v.genes) == ["Cd3d", "ACTB", "mt-Co1"]
    assert list(v.display_names) == ["CD3D", "ACTB", "MT-CO1"]
    np.testing.assert_array_equal(v.index_of(["cd3d", "MT-CO1", "nope"]), [0, 2, -1])
    np.testing.assert_array_equal(v.index_of(["Cd3d", "CD3D"], upper=False), [0, -1])
    back = Vocab.from_frame(v.to_frame())
    assert back.equals(v)
    assert list(back.display_names) == list(v.display_names)
    np.testing.assert_array_equal(back.n_cells_expressed, [3, 0, 1])


def test_check_gene_names_accepts_good_names():
    names = check_gene_names(pd.Index(["CD3D", "Actb", "HLA-DRA"]))
    assert list(names) == ["CD3D", "Actb", "HLA-DRA"]


def test_check_gene_names_refuses_duplicates():
    with pytest.raises(C2SError, match="var_names_make_unique") as e:
        check_gene_names(["A", "B", "A", "C", "C"])
    assert "duplicated" in str(e.value)


@pytest.mark.parametrize("bad", ["CD3 D", "CD3\tD", "CD3D\n", " CD3D"])
def test_check_gene_names_refuses_whitespace(bad):
    with pytest.raises(C2SError, match="whitespace"):
        check_gene_names(["ACTB", bad])


def test_check_gene_names_refuses_empty():
    with pytest.raises(C2SError, match="empty"):
        check_gene_names(["ACTB", ""])
    with pytest.raises(C2SError, match="no genes"):
        check_gene_names([])


def test_check_gene_names_warns_on_ensembl_ids():
    ids = [f"ENSG{i:011d}" for i in range(8)] + ["ENSMUSG00000000001.3", "CD3D"]
    with pytest.warns(UserWarning, match="Ensembl"):
        check_gene_names(ids)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_gene_names(["CD3D", "ACTB", "ENSG00000000003"])  # a minority: no warning


def test_check_gene_names_warns_on_case_clash():
    with pytest.warns(UserWarning, match="differ only by case"):
        check_gene_names(["Actb", "ACTB", "CD3D"])


# ---------------------------------------------------------------------------------------
# from_anndata
# ---------------------------------------------------------------------------------------
def test_from_anndata_refuses_scaled_data(scaled_adata):
    with pytest.raises(C2SError, match="scaled") as e:
        c2s.sentences.from_anndata(scaled_adata)
    msg = str(e.value)
    assert "use_raw=True" in msg and "layer=" in msg


def test_from_anndata_layer_raw_and_obs_keys(scaled_adata, lognorm_sentences):
    for kw in ({"use_raw": True}, {"layer": "lognorm"}):
        cs = c2s.sentences.from_anndata(scaled_adata, obs_keys=["cell_type"], **kw)
        np.testing.assert_array_equal(cs.genes, lognorm_sentences.genes)
        np.testing.assert_array_equal(cs.values, lognorm_sentences.values)
        assert list(cs.obs.columns) == ["cell_type"]
    with pytest.raises(C2SError, match="layer"):
        c2s.sentences.from_anndata(scaled_adata, layer="nope")
    with pytest.raises(C2SError, match="either"):
        c2s.sentences.from_anndata(scaled_adata, layer="lognorm", use_raw=True)


def test_from_anndata_var_names_column(lognorm_adata):
    lognorm_adata.var["symbol"] = [f"SYM{i}" for i in range(lognorm_adata.n_vars)]
    cs = c2s.sentences.from_anndata(lognorm_adata, var_names="symbol", n_genes=4)
    assert cs.vocab.genes[0] == "SYM0"
    assert cs.lengths.max() == 4
    with pytest.raises(C2SError, match="no column"):
        c2s.sentences.from_anndata(lognorm_adata, var_names="missing")


# ---------------------------------------------------------------------------------------
# edge cases that once failed
# ---------------------------------------------------------------------------------------
def test_take_negative_index(lognorm_sentences):
    cs = lognorm_sentences
    np.testing.assert_array_equal(cs.take([-1]).cell(0), cs.cell(cs.n_cells - 1))


def test_take_nothing(lognorm_sentences):
    assert lognorm_sentences.take([]).n_cells == 0


def test_from_text_with_case_clashing_vocab():
    with pytest.warns(UserWarning, match="case"):
        names = check_gene_names(["Actb", "ACTB", "CD3D"])
    cs = CellSentences.from_text(["CD3D"], Vocab.from_names(names))
    np.testing.assert_array_equal(cs.genes, [2])


def test_from_text_with_case_clashing_vocab_picks_first():
    with pytest.warns(UserWarning, match="case"):
        names = check_gene_names(["Actb", "ACTB", "CD3D"])
    cs = CellSentences.from_text(["ACTB CD3D"], Vocab.from_names(names))
    np.testing.assert_array_equal(cs.genes, [0, 2])


def test_tie_order_augmentation_reorders_only_ties(pbmc):
    """Reordered ties: every cell keeps its genes and its values in the same order (so
    genes of distinct expression keep their order); tied genes change order with the seed
    and come back the same for the same seed."""
    from c2s.sentences import from_anndata, shuffle_ties

    cs = from_anndata(pbmc[:60].copy())
    a, b = shuffle_ties(cs, 1), shuffle_ties(cs, 1)
    np.testing.assert_array_equal(a.genes, b.genes)  # seeded
    np.testing.assert_array_equal(a.values, cs.values)  # values in the same order
    moved = 0
    for i in range(cs.n_cells):
        g0, g1, v = cs.cell(i), a.cell(i), cs.cell_values(i)
        assert sorted(g0) == sorted(g1)
        for val in np.unique(v):  # each run of equal values holds the same genes
            assert set(g0[v == val]) == set(g1[v == val])
        moved += int((g0 != g1).any())
        distinct = np.flatnonzero(np.r_[True, v[1:] != v[:-1]] & np.r_[v[:-1] != v[1:], True])
        np.testing.assert_array_equal(g0[distinct], g1[distinct])  # untied genes stay put
    assert moved > cs.n_cells // 2  # log-normalized counts tie often
    assert (shuffle_ties(cs, 2).genes != a.genes).any()
    with pytest.raises(C2SError, match="values"):
        shuffle_ties(CellSentences(cs.genes, cs.offsets, cs.vocab, cs.obs), 0)


def test_gene_dropout_keeps_a_seeded_subsequence(lognorm_sentences):
    from c2s.sentences import drop_genes

    cs = lognorm_sentences
    d = drop_genes(cs, 0.3, 5)
    assert abs(1 - len(d.genes) / len(cs.genes) - 0.3) < 0.03
    for i in range(cs.n_cells):
        full, kept = list(cs.cell(i)), list(d.cell(i))
        pos = [full.index(g) for g in kept]
        assert pos == sorted(pos)  # order kept
        np.testing.assert_array_equal(d.cell_values(i), cs.cell_values(i)[pos])
    np.testing.assert_array_equal(drop_genes(cs, 0.3, 5).genes, d.genes)
    with pytest.raises(C2SError, match="fraction"):
        drop_genes(cs, 1.0, 0)


def test_to_text_takes_n_genes_and_its_old_name_warns(lognorm_adata):
    import pytest

    from c2s.sentences import from_anndata

    cs = from_anndata(lognorm_adata, seed=0)
    first = cs.to_text(n_genes=3)
    assert all(len(t.split()) <= 3 for t in first) and first[0] == " ".join(
        cs.to_text()[0].split()[:3]
    )
    with pytest.warns(FutureWarning, match="k= is now called n_genes="):
        assert cs.to_text(k=3) == first
