"""Training tokens: response-only labels, EOS trained, one BOS, shortening from the genes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

from c2s._errors import C2SError  # noqa: E402
from c2s.prompts import Renderer  # noqa: E402
from c2s.sentences import CellSentences, Vocab  # noqa: E402
from c2s.train import IGNORE, PromptCollator, encode_examples, encode_text  # noqa: E402

GENES = [f"GENE{i}" for i in range(40)] + ["HLA-DRA", "CD74", "LYZ"]


def cells(n=12, length=30, seed=0):
    rng = np.random.default_rng(seed)
    sents = [rng.choice(len(GENES), size=length, replace=False) for _ in range(n)]
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sents])])
    obs = pd.DataFrame(
        {"cell_type": rng.choice(["CD14+ Monocyte", "B cell"], size=n), "organism": "Homo sapiens"},
        index=[f"c{i}" for i in range(n)],
    )
    return CellSentences(np.concatenate(sents), offsets, Vocab.from_names(GENES), obs)


def make_tokenizer(with_bos: bool):
    """A small byte-level BPE (gene names split into several tokens, as with Pythia)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    texts = [e.text for e in Renderer("cell_type_prediction", n_genes=30).examples(cells(40))]
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    kw = {}
    if with_bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
        )
        kw["bos_token"] = "<s>"
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", **kw)


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


def test_collator_pads_with_no_loss(tokenizer):
    cs = cells(4, length=10)
    enc, _ = encode_examples(
        Renderer("cell_type_prediction", n_genes=10), cs, tokenizer, max_length=512
    )
    enc[1] = {k: v[:-5] if isinstance(v, list) else v for k, v in enc[1].items()}
    batch = PromptCollator(tokenizer.eos_token_id, pad_to_multiple_of=8)(enc)
    assert batch["input_ids"].shape[1] % 8 == 0
    for i, e in enumerate(enc):
        L = len(e["input_ids"])
        assert batch["attention_mask"][i, :L].all() and not batch["attention_mask"][i, L:].any()
        assert (batch["labels"][i, L:] == IGNORE).all()
        assert batch["labels"][i, :L].tolist() == e["labels"]


@pytest.mark.parametrize("arch", ["gpt_neox", "gpt2"])
def test_left_padding_with_trimmed_logits_keeps_each_examples_loss(arch):
    """The training batch layout (left padding, position ids, logits only where labels are
    trained) gives exactly the loss of the examples computed one by one without padding."""
    from c2s.model import C2SModel

    m = C2SModel.from_scratch(genes=GENES, architecture=arch, max_length=256, device="cpu")
    tok = m.tokenizer
    r = Renderer("cell_type_prediction", n_genes=30)
    cs = cells(6)
    feats = []
    for k, ex in zip((30, 5, 17, 30, 1, 9), r.examples(cs), strict=True):
        ex = r.render(cs, ex.cells, ex.template, n_genes=k)  # very different lengths
        feats.append(encode_text(tok, ex.prompt, ex.response))
    model = m.model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for f in feats:
            logits = model(torch.tensor([f["input_ids"]])).logits[0, :-1]
            target = torch.tensor(f["labels"][1:])
            use = target != IGNORE
            total += torch.nn.functional.cross_entropy(logits[use], target[use], reduction="sum")
            count += int(use.sum())
        batch = PromptCollator(
            tok.pad_token_id, padding_side="left", position_ids=True, trim_logits=True
        )(feats)
        assert batch["logits_to_keep"] < batch["input_ids"].shape[1] // 2
        out = model(**batch)
    assert out.logits.shape[1] == batch["logits_to_keep"]
    torch.testing.assert_close(out.loss, total / count, rtol=1e-5, atol=1e-5)
