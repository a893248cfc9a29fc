"""Training tokens: response-only labels, EOS trained, one BOS, shortening from the genes."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from _tokens import cells, make_tokenizer  # noqa: E402

from c2s._errors import C2SError  # noqa: E402
from c2s.encoding import IGNORE, encode_examples, encode_text  # noqa: E402
from c2s.prompts import Renderer  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer(False)


def test_labels_mask_exactly_the_prompt_and_train_eos(tokenizer):
    prompt = "Cell sentence: GENE1 CD74 LYZ.\nThe cell type corresponding to these genes is:"
    response = "CD14+ Monocyte."
    enc = encode_text(tokenizer, prompt, response)
    ids, labels = np.array(enc["input_ids"]), np.array(enc["labels"])
    trained = labels != IGNORE
    # The prompt's own tokens are exactly the untrained prefix.
    n_prompt = len(tokenizer(prompt)["input_ids"])
    assert (~trained[:n_prompt]).all() and trained[n_prompt:].all()
    # What is trained decodes to the response, then EOS; EOS is attended.
    assert tokenizer.decode(ids[trained][:-1].tolist()).strip() == response
    assert ids[-1] == labels[-1] == tokenizer.eos_token_id
    assert enc["attention_mask"] == [1] * len(ids)
    full = encode_text(tokenizer, prompt, response, loss_on_response_only=False)
    assert full["labels"] == full["input_ids"]


def test_one_bos_at_the_start_only():
    tok = make_tokenizer(True)
    enc = encode_text(tok, "Cell sentence: GENE1 CD74.\nThe cell type is:", "B cell.")
    bos = tok.bos_token_id
    assert enc["input_ids"][0] == bos and enc["input_ids"].count(bos) == 1
    assert enc["labels"][0] == IGNORE


def test_long_examples_drop_genes_not_the_response(tokenizer):
    cs = cells(6, length=30)
    r = Renderer("cell_type_prediction", n_genes=30)
    full, _ = encode_examples(r, cs, tokenizer, max_length=10_000)
    longest = max(len(e["input_ids"]) for e in full)
    limit = longest - 25
    with pytest.warns(UserWarning, match="shortened"):
        enc, stats = encode_examples(r, cs, tokenizer, max_length=limit)
    assert stats.n_shortened > 0 and stats.n_dropped == 0 and stats.n_examples == 6
    for e, (cells_, template) in zip(enc, r.plan(cs), strict=True):
        assert len(e["input_ids"]) <= limit
        ex = r.render(cs, cells_, template, n_genes=e["n_genes"])
        # the prompt says how many genes it holds, and the response is whole
        assert f"list of {e['n_genes']} gene names" in ex.prompt
        assert tokenizer.decode(e["input_ids"]) == ex.prompt + " " + ex.response + "<|endoftext|>"
        assert ex.response == f"{cs.obs.cell_type.iloc[cells_[0]]}."
        if e["n_genes"] < 30:  # the longest that fits: one more gene would not
            bigger = r.render(cs, cells_, template, n_genes=e["n_genes"] + 1)
            assert len(encode_text(tokenizer, bigger.prompt, bigger.response)["input_ids"]) > limit


def test_generation_examples_shorten_the_sentence_consistently(tokenizer):
    cs = cells(3, length=30)
    r = Renderer("cell_type_generation", n_genes=30)
    with pytest.warns(UserWarning, match="shortened"):
        enc, _ = encode_examples(r, cs, tokenizer, max_length=60)
    for e in enc:
        assert len(e["input_ids"]) <= 60
        text = tokenizer.decode(e["input_ids"])
        assert f"Generate a list of {e['n_genes']} genes" in text
        assert (
            len(text.split("Cell sentence:")[1].replace("<|endoftext|>", "").split())
            == e["n_genes"]
        )


def test_examples_that_cannot_fit_are_dropped_and_counted(tokenizer):
    cs = cells(2)
    with (
        pytest.raises(C2SError, match="No example fits"),
        pytest.warns(UserWarning, match="left out"),
    ):
        encode_examples(Renderer("cell_type_prediction"), cs, tokenizer, max_length=12)
