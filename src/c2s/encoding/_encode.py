"""Turning rendered prompts into tokens, exactly as training sees them (inference scores and
decodes against the same encoding).

Training text is ``prompt + " " + response`` followed by the tokenizer's EOS token, encoded
in one call so that a tokenizer that adds BOS adds it once, at the start. Labels are -100 on
the prompt (when the loss is on the response only) and on padding; EOS is attended and
trained. An example longer than the context is shortened by rendering it again with fewer
genes per cell sentence (``num_genes`` in the prompt follows), never by cutting the response.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from c2s._errors import C2SError

IGNORE = -100


@dataclass
class EncodeStats:
    """What :func:`encode_examples` did."""

    n_examples: int = 0
    n_shortened: int = 0
    n_dropped: int = 0
    n_tokens: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def encode_text(
    tokenizer, prompt: str, response: str, *, loss_on_response_only: bool = True
) -> dict:
    """Tokens of one example: ``input_ids``, ``attention_mask`` and ``labels`` (lists).

    The prompt/response boundary is found from the character offsets of the tokens, so it
    is exact even when the tokenizer merges the joining space into the response's first token.
    """
    return encode_texts(
        tokenizer, [prompt], [response], loss_on_response_only=loss_on_response_only
    )[0]


def encode_texts(
    tokenizer,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    loss_on_response_only: bool = True,
) -> list[dict]:
    """:func:`encode_text` for many pairs in one batched tokenizer call."""
    out = []
    for ids, boundary in token_ids(tokenizer, prompts, responses):
        labels = list(ids)
        if loss_on_response_only:
            labels[:boundary] = [IGNORE] * boundary
        out.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return out


def token_ids(tokenizer, prompts: Sequence[str], responses: Sequence[str]) -> list:
    """Per pair: the token ids of ``prompt + " " + response`` and EOS, and how many of them
    belong to the prompt (the first token whose text ends after the prompt starts the
    response)."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise C2SError("The tokenizer has no EOS token; set tokenizer.eos_token first.")
    texts = [f"{p} {r}" for p, r in zip(prompts, responses, strict=True)]
    enc = tokenizer(texts, add_special_tokens=True)
    out = []
    for i, (prompt, ids) in enumerate(zip(prompts, enc["input_ids"], strict=True)):
        cut = len(prompt)
        # the token holding the joining space, else the response's first character: the first
        # token that ends after the prompt
        b = enc.char_to_token(i, cut)
        b = enc.char_to_token(i, cut + 1) if b is None else b
        if b is None:  # a response that starts with text no token covers: read the offsets
            offs = tokenizer(texts[i], add_special_tokens=True, return_offsets_mapping=True)
            b = next(
                (k for k, (_, end) in enumerate(offs["offset_mapping"]) if end > cut), len(ids)
            )
        out.append(([*ids, eos], b))
    return out


def shorten(renderer, cs, cells, template, tokenizer, max_length, k_max):
    """The largest gene count whose example fits in ``max_length`` tokens, as
    ``((ids, boundary), k)`` (binary search: the length grows with k); ``(None, 0)`` when not
    even one gene fits."""
    best = None
    lo, hi = 1, k_max - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        ex = renderer.render(cs, cells, template, n_genes=mid)
        enc = token_ids(tokenizer, [ex.prompt], [ex.response])[0]
        if len(enc[0]) <= max_length:
            best = (enc, mid)
            lo = mid + 1
        else:
            hi = mid - 1
    return best if best is not None else (None, 0)


def prompt_within(renderer, sentences, cells, tokenizer, limit: int) -> tuple[str, int]:
    """The prompt for ``cells`` with as many genes per sentence as fit in ``limit`` tokens
    (at most the renderer's ``n_genes``), and that gene count. Binary search: the length grows
    with the genes. Raises C2SError when even one gene does not fit."""
    prompt = renderer.prompt(sentences, cells)
    if len(tokenizer(prompt)["input_ids"]) <= limit:
        return prompt, renderer.n_genes
    lo, hi, best = 1, renderer.n_genes - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        p = renderer.prompt(sentences, cells, n_genes=mid)
        if len(tokenizer(p)["input_ids"]) <= limit:
            best, lo = (p, mid), mid + 1
        else:
            hi = mid - 1
    if best is None:
        raise C2SError(f"Even one gene per cell does not fit in {limit} tokens.")
    return best
