"""Alignment prompts carry the columns the rewards read; the gene decoding constraint that
TRL's generation settings can hold."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("datasets")

import c2s
from c2s.model import C2SModel
from c2s.train import alignment_prompts, gene_generation_kwargs


def test_label_prompts_carry_each_cells_label(pbmc_dataset):
    data = alignment_prompts(pbmc_dataset, "cell_type_prediction", n_genes=10)
    rows = pbmc_dataset.split_indices()["train"]
    obs = pbmc_dataset.obs(["cell_type"]).iloc[rows]
    assert data["label"] == obs["cell_type"].astype(str).tolist()
    cs = pbmc_dataset.sentences(rows=rows[:3], n_genes=10, values=False)
    for i, text in enumerate(cs.to_text(n_genes=10)):  # each prompt holds its own cell
        assert text in data[i]["prompt"]
    few = alignment_prompts(pbmc_dataset, "cell_type_prediction", n_genes=10, limit=7, seed=1)
    assert len(few) == 7 and set(few["prompt"]) <= set(data["prompt"])
    with pytest.warns(FutureWarning, match="ds= is now called dataset="):  # the old keyword
        old = alignment_prompts(ds=pbmc_dataset, task="cell_type_prediction", n_genes=10)
    assert old["prompt"] == data["prompt"]


def test_generation_and_pair_prompts_carry_reference_cells(pbmc_dataset, tmp_path):
    gen = alignment_prompts(pbmc_dataset, "cell_type_generation", n_genes=8, limit=5,
                            program=["CD74", "B2M"])  # fmt: skip
    assert all(len(s.split()) == 8 for s in gen["reference_cell"])
    assert gen["program"] == [["CD74", "B2M"]] * 5
    adata = c2s.datasets.synthetic_perturbation(n_cells=6, n_genes=120, n_targets=10, seed=3)
    ds = c2s.io.convert(adata, tmp_path / "pert", normalize=True, seed=0)
    pairs = alignment_prompts(ds, "perturbation_prediction", n_genes=12, context=["context"])
    rows = ds.split_indices()["train"]
    sub = ds.sentences(rows=rows, n_genes=12, values=False, obs_columns=["perturbation", "context"])
    ctx = dict(zip(sub.to_text(n_genes=12), sub.obs["context"].astype(str), strict=True))
    pert = dict(zip(sub.to_text(n_genes=12), sub.obs["perturbation"].astype(str), strict=True))
    for c, p, name in zip(pairs["control_cell"], pairs["perturbed_cell"], pairs["perturbation"],
                          strict=True):  # fmt: skip
        assert ctx[c] == ctx[p] and pert[c] == "control" and pert[p] == name != "control"
    with pytest.raises(c2s.C2SError, match="no 'nope' cells"):
        alignment_prompts(ds, "perturbation_prediction", n_genes=12, split="nope")


def test_gene_constraint_keeps_completions_to_distinct_known_genes(pbmc_dataset):
    import torch

    m = C2SModel.from_scratch(pbmc_dataset, max_length=256, device="cpu", seed=0)
    genes = [str(g) for g in pbmc_dataset.vocab.display_names[:40]]
    kw = gene_generation_kwargs(m.tokenizer, genes)
    assert kw is not None and kw["no_repeat_ngram_size"] == 1
    prompt = alignment_prompts(pbmc_dataset, "cell_type_generation", n_genes=8, limit=1)[0]
    ids = torch.tensor([m.tokenizer(prompt["prompt"], add_special_tokens=False)["input_ids"]])
    torch.manual_seed(0)
    out = m.model.generate(ids, do_sample=True, max_new_tokens=30, min_new_tokens=30,
                           pad_token_id=m.tokenizer.pad_token_id, **kw)  # fmt: skip
    new = m.tokenizer.convert_ids_to_tokens(out[0, ids.shape[1] :].tolist())
    words = [t.strip() for t in new if t.strip() not in (".", "") and t not in {
        m.tokenizer.eos_token, m.tokenizer.pad_token}]  # fmt: skip
    assert words and set(words) <= set(genes) and len(words) == len(set(words))

    class SubWords:  # a gene in two pieces, as in a released checkpoint's tokenizer
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [1, 2]}

    assert gene_generation_kwargs(SubWords(), ["CD74"]) is None
