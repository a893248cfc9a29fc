"""Prompts that fit a model's context, shared by inference (``c2s.tl``) and training (the label
heads): each unit's prompt, rendered again with fewer genes per sentence when its tokens pass
the limit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from c2s._errors import C2SError
from c2s.encoding._encode import prompt_within

CHUNK = 1024  # prompts tokenized per tokenizer call


@dataclass
class FittedPrompts:
    """``prompts[i]`` is unit ``i``'s prompt with ``n_genes[i]`` genes per sentence; ``ids``
    its token ids (None unless asked for); ``shortened`` the units that lost genes."""

    prompts: list[str]
    n_genes: list[int]
    ids: list[list[int]] | None
    shortened: list[int]

    def spans(self, sentences, units: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
        """Where each single-cell unit's sentence lies in its prompt (``(start, end)``
        characters)."""
        from c2s.prompts import sentence_texts

        out = []
        for prompt, k, unit in zip(self.prompts, self.n_genes, units, strict=True):
            sentence = sentence_texts(sentences, [unit[0]], k)[0]
            start = prompt.find(sentence)
            out.append((start, start + len(sentence)))
        return out


def fit_prompts(
    renderer,
    sentences,
    units: Sequence[Sequence[int]],
    tokenizer,
    limit: int | None,
    *,
    keep_ids: bool = True,
    too_long: str | None = None,
) -> FittedPrompts:
    """The prompts of ``units`` (tuples of cell rows of ``sentences``) under ``renderer``,
    each within ``limit`` tokens: a longer prompt is rendered again with as many genes per
    sentence as fit (:func:`prompt_within`). ``limit=None`` (a model that states no context)
    keeps every prompt whole and tokenizes nothing. Prompts are tokenized ``CHUNK`` at a time;
    with ``keep_ids`` their ids come back too.

    Raises C2SError when even one gene per cell does not fit: "Even one gene per cell does
    not fit ``too_long``" (default: "in LIMIT tokens")."""
    prompts = [renderer.prompt(sentences, u) for u in units]
    n_genes = [renderer.n_genes] * len(prompts)
    if limit is None:
        return FittedPrompts(prompts, n_genes, None, [])
    ids: list[list[int]] = []
    shortened: list[int] = []
    for c0 in range(0, len(prompts), CHUNK):
        chunk = tokenizer(prompts[c0 : c0 + CHUNK])["input_ids"]
        shortened += [c0 + j for j, x in enumerate(chunk) if len(x) > limit]
        if keep_ids:
            ids += chunk
    for i in shortened:
        try:
            prompts[i], n_genes[i] = prompt_within(renderer, sentences, units[i], tokenizer, limit)
        except C2SError:
            where = too_long or f"in {limit} tokens"
            raise C2SError(f"Even one gene per cell does not fit {where}.") from None
        if keep_ids:
            ids[i] = tokenizer(prompts[i])["input_ids"]
    return FittedPrompts(prompts, n_genes, ids if keep_ids else None, shortened)
