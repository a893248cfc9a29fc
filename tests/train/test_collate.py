"""Training batches: padding adds no loss, and left padding with trimmed logits keeps each
example's loss."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from _tokens import GENES, cells, make_tokenizer  # noqa: E402

from c2s.encoding import IGNORE, encode_examples, encode_text  # noqa: E402
from c2s.prompts import Renderer  # noqa: E402
from c2s.train import PromptCollator  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer(False)


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
