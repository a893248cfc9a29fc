"""The gene tokenizer: one token per gene, exact round trips for every task's prompts."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")

import c2s
from c2s.encoding import IGNORE, encode_text
from c2s.model import build_gene_tokenizer, pieces
from c2s.prompts import Renderer, list_tasks


@pytest.fixture(scope="module")
def pbmc_cells():
    a = c2s.datasets.pbmc68k_reduced()
    cs = c2s.sentences.from_anndata(a)
    cs.obs["tissue"] = np.where(np.arange(cs.n_cells) % 2 == 0, "blood", "bone marrow")
    cs.obs["abstract"] = "Peripheral blood mononuclear cells from a healthy donor"
    cs.obs["perturbation"] = np.where(np.arange(cs.n_cells) % 3 == 0, "control", "IFN-beta")
    return cs


@pytest.fixture(scope="module")
def tokenizer(pbmc_cells):
    obs = pbmc_cells.obs
    texts = [
        *obs.cell_type.astype(str).unique(),
        "Homo sapiens",
        "blood",
        "bone marrow",
        obs.abstract.iloc[0],
        "IFN-beta",
    ]
    return build_gene_tokenizer(list(pbmc_cells.vocab.display_names), texts=texts)


def test_every_gene_is_one_token_with_or_without_a_space(tokenizer, pbmc_cells):
    for g in pbmc_cells.vocab.display_names:
        assert len(tokenizer(g)["input_ids"]) == 1, g
        assert len(tokenizer(" " + g)["input_ids"]) == 1, g
    sentence = " ".join(pbmc_cells.vocab.display_names[pbmc_cells.cell(0)])
    assert len(tokenizer(sentence)["input_ids"]) == len(pbmc_cells.cell(0))


@pytest.mark.parametrize("profile", ["compat", "paraphrase"])
@pytest.mark.parametrize("task", list_tasks())
def test_prompts_round_trip_exactly(tokenizer, pbmc_cells, task, profile):
    r = Renderer(task, profile=profile, n_genes=30, min_cells=2, max_cells=4, group_by=["tissue"])
    for ex in list(r.examples(pbmc_cells))[:5]:
        ids = tokenizer(ex.text)["input_ids"]
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids) == ex.text


def test_training_labels_with_the_gene_tokenizer(tokenizer, pbmc_cells):
    ex = next(Renderer("cell_type_prediction", n_genes=20).examples(pbmc_cells))
    enc = encode_text(tokenizer, ex.prompt, ex.response)
    ids, labels = np.array(enc["input_ids"]), np.array(enc["labels"])
    trained = labels != IGNORE
    assert tokenizer.decode(ids[trained][:-1].tolist()).strip() == ex.response
    assert tokenizer.decode(ids[~trained].tolist()) == ex.prompt
    assert ids[-1] == tokenizer.eos_token_id


def test_unknown_words_become_unk(tokenizer):
    ids = tokenizer("Cell sentence: FTL zebrafish.")["input_ids"]
    assert tokenizer.unk_token_id in ids and ids.count(tokenizer.unk_token_id) == 1


def test_pieces_keep_gene_names_whole():
    assert pieces("A RP11-34P13.7 HLA-DRA.\n") == ["A", " RP11-34P13.7", " HLA-DRA", ".", "\n"]
    with pytest.warns(UserWarning, match="do not form a single piece"):
        tok = build_gene_tokenizer(["GENE1", "ODD,NAME"])
    assert len(tok("ODD,NAME")["input_ids"]) == 3
