"""Batching encoded examples for training: padding, position ids and trimmed logits."""

from __future__ import annotations

from c2s._errors import C2SError
from c2s.encoding import IGNORE


class PromptCollator:
    """Pads encoded examples into a batch of tensors.

    Padding positions get ``attention_mask`` 0 and label -100, so they add no loss.

    Parameters
    ----------
    pad_token_id
        Token id written at padding positions.
    pad_to_multiple_of
        Round the batch length up to a multiple of this.
    padding_side
        ``"right"`` (default) or ``"left"``.
    position_ids
        Add ``position_ids`` counting real tokens only (0 at each example's first token), so
        that a left-padded example sees the same positions as it would alone.
    trim_logits
        Left padding only: add ``logits_to_keep`` = the number of trailing positions that
        predict a trained label, and cut ``labels`` to them. The model then computes its
        vocabulary projection and loss only there (with the loss on the response only, a
        cell-type answer is a few tokens of a few hundred), and the loss is unchanged.
    """

    def __init__(
        self,
        pad_token_id: int,
        *,
        pad_to_multiple_of: int | None = None,
        padding_side: str = "right",
        position_ids: bool = False,
        trim_logits: bool = False,
    ):
        if pad_token_id is None:
            raise C2SError("A pad token id is needed to batch examples.")
        if padding_side not in ("left", "right"):
            raise C2SError("padding_side must be 'left' or 'right'.")
        if trim_logits and padding_side != "left":
            raise C2SError("trim_logits needs padding_side='left' (answers end every row).")
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of
        self.padding_side = padding_side
        self.position_ids = position_ids
        self.trim_logits = trim_logits

    def __call__(self, features: list[dict]) -> dict:
        import torch

        n = max(len(f["input_ids"]) for f in features)
        m = self.pad_to_multiple_of
        if m:
            n = (n + m - 1) // m * m
        batch = {
            k: torch.full((len(features), n), v, dtype=torch.long)
            for k, v in (
                ("input_ids", self.pad_token_id),
                ("attention_mask", 0),
                ("labels", IGNORE),
            )
        }
        keep = 1
        for i, f in enumerate(features):
            L = len(f["input_ids"])
            span = slice(n - L, n) if self.padding_side == "left" else slice(0, L)
            batch["input_ids"][i, span] = torch.tensor(f["input_ids"])
            batch["attention_mask"][i, span] = torch.tensor(f["attention_mask"])
            batch["labels"][i, span] = torch.tensor(f["labels"])
            if self.trim_logits:
                first = next((j for j, v in enumerate(f["labels"]) if v != IGNORE), L)
                keep = max(keep, L - first + 1)
        if self.position_ids:
            batch["position_ids"] = (batch["attention_mask"].cumsum(1) - 1).clamp(min=0)
        if self.trim_logits:
            keep = min(keep, n)
            batch["labels"] = batch["labels"][:, n - keep :].contiguous()
            batch["logits_to_keep"] = keep
        return batch


class CountingCollator(PromptCollator):
    """:class:`PromptCollator` that also counts real and padded positions."""

    def __init__(self, pad_token_id: int, **kw):
        super().__init__(pad_token_id, **kw)
        self.real = 0
        self.padded = 0

    def __call__(self, features):
        batch = super().__call__(features)
        real = int(batch["attention_mask"].sum())
        self.real += real
        self.padded += batch["attention_mask"].numel() - real
        return batch
