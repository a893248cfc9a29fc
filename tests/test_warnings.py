"""Warnings point at the user's line (this file), however deep inside c2s they are raised and
whatever wrappers (``@renamed``) lie between: :func:`c2s._warn.warn_user`."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import c2s
from c2s._errors import C2SError

HERE = __file__


def _caught(fn, match: str, category=UserWarning):
    """Run ``fn``; the one warning whose message matches ``match`` (its filename checked by
    the caller)."""
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        fn()
    hits = [w for w in got if issubclass(w.category, category) and match in str(w.message)]
    assert hits, [str(w.message) for w in got]
    return hits[0]


def _points_here(fn, match: str, category=UserWarning) -> None:
    w = _caught(fn, match, category)
    assert w.filename == HERE, (w.filename, str(w.message))


def test_warn_user_skips_every_c2s_frame():
    from c2s._deprecate import warn_renamed
    from c2s._warn import warn_user

    _points_here(lambda: warn_user("hello"), "hello")
    _points_here(lambda: warn_renamed("a=", "b="), "a= is now called b=", FutureWarning)


def _rare_label(adata):
    obs = adata.obs
    obs["cell_type"] = obs["cell_type"].cat.add_categories(["rare"])
    obs.loc[obs.index[:2], "cell_type"] = "rare"
    return adata


def test_split_warning_points_at_convert_and_assign_splits(tmp_path, lognorm_adata):
    a = _rare_label(lognorm_adata)
    _points_here(
        lambda: c2s.io.convert(a, tmp_path / "c", stratify="cell_type", seed=1), "too few cells"
    )
    labels = a.obs["cell_type"]
    _points_here(lambda: c2s.io.assign_splits(len(labels), stratify=labels), "too few cells")


def test_gene_sets_differ_points_at_convert(tmp_path, lognorm_adata):
    other = lognorm_adata[:, 10:].copy()
    other.obs_names = "b_" + other.obs_names
    _points_here(
        lambda: c2s.io.convert([lognorm_adata, other], tmp_path / "m", genes="union"),
        "Gene sets differ",
    )


def test_ensembl_warning_points_at_the_caller(lognorm_adata):
    a = lognorm_adata[:20].copy()
    a.var_names = [f"ENSG{i:011d}" for i in range(a.n_vars)]
    _points_here(lambda: c2s.sentences.from_anndata(a), "look like Ensembl IDs")


def test_ensembl_warning_points_at_a_tl_verb():
    pytest.importorskip("torch")
    from c2s.model import C2SModel

    genes = [f"ENSG{i:011d}" for i in range(8)]
    m = C2SModel.from_scratch(genes=genes, max_length=128, device="cpu")
    a = c2s.datasets.synthetic(6, 8, genes_per_cell=5, normalize=True, seed=0)
    a.var_names = genes
    _points_here(
        lambda: c2s.tl.embed(a, m, n_genes=5, organism="human", inplace=False),
        "look like Ensembl IDs",
    )


def test_obs_words_warning_points_at_from_scratch(monkeypatch, pbmc_dataset):
    pytest.importorskip("torch")
    from c2s.model import C2SModel, _scratch

    monkeypatch.setattr(_scratch.obs_words, "__defaults__", (2,))  # few values count as many
    _points_here(
        lambda: C2SModel.from_scratch(pbmc_dataset, max_length=64, device="cpu"),
        "its words are not added",
    )


def test_align_steps_warnings_point_at_the_caller():
    from c2s.train import AlignConfig

    old = "steps is now called max_steps"
    _points_here(lambda: AlignConfig.upgrade_names({"steps": 3}), old, FutureWarning)
    _points_here(lambda: AlignConfig.from_dict({"steps": 3}), old, FutureWarning)
    _points_here(lambda: AlignConfig(steps=3), "steps= is now called max_steps=", FutureWarning)


def test_align_steps_keyword_points_at_align(tmp_path):
    pytest.importorskip("trl")
    from c2s.train import align

    def call():  # warned about before the missing model is an error
        with pytest.raises(C2SError):
            align(tmp_path / "no-model", tmp_path / "no-data", out=tmp_path / "o", steps=2)

    _points_here(call, "steps is now called max_steps", FutureWarning)


def test_renamed_keyword_points_at_the_caller():
    X = sp.random(5, 9, density=0.5, format="csr", random_state=0)
    _points_here(lambda: c2s.sentences.rank(X, top_k=3), "top_k= is now called", FutureWarning)


def test_old_align_config_steps_attribute_warns_and_reads_max_steps():
    from c2s.train import AlignConfig

    cfg = AlignConfig(max_steps=7)
    with pytest.warns(FutureWarning, match=r"AlignConfig\.steps .*AlignConfig\.max_steps"):
        assert cfg.steps == 7
    _points_here(lambda: cfg.steps, "AlignConfig.steps", FutureWarning)
    with pytest.raises(AttributeError):
        cfg.steps = 3  # read-only: set max_steps
    assert cfg.max_steps == 7
    assert "steps" not in cfg.to_dict()


def test_as_dataset_takes_a_dataset_or_its_path(tmp_path, pbmc_dataset):
    from c2s.io import as_dataset

    assert as_dataset(pbmc_dataset) is pbmc_dataset
    opened = as_dataset(pbmc_dataset.path)
    assert isinstance(opened, c2s.io.C2SDataset)
    assert opened.n_cells == pbmc_dataset.n_cells
    with pytest.raises(C2SError) as missing:
        as_dataset(tmp_path / "nothing")
    with pytest.raises(C2SError) as direct:
        c2s.io.read_dataset(tmp_path / "nothing")
    assert str(missing.value) == str(direct.value)


def test_rank_csr_refuses_the_old_columns_keyword():
    from c2s.sentences import rank_csr

    X = sp.random(6, 9, density=0.5, format="csr", random_state=1, dtype=np.float32)
    new = rank_csr(X.indptr, X.indices, X.data, 9, n_genes=2)
    assert np.diff(new.offsets).max() <= 2
    with pytest.raises(C2SError, match=r"4th argument.*n_vars"):
        rank_csr(X.indptr, X.indices, X.data, n_genes=9)  # the old spelling of the columns
    with pytest.raises(C2SError, match=r"4th argument.*n_vars"):
        rank_csr(X.indptr, X.indices, X.data, n_genes=9, top_k=2)
    with pytest.raises(C2SError, match="4th argument"):
        rank_csr(X.indptr, X.indices, X.data, n_vars=9)
    with pytest.warns(FutureWarning, match="top_k= is now called n_genes="):
        old = rank_csr(X.indptr, X.indices, X.data, 9, top_k=2)  # positional columns still work
    np.testing.assert_array_equal(old.genes, new.genes)
