"""Batching for inference: length-sorted batches, left padding with position ids that count
real tokens only (so a sequence's result does not depend on its batch-mates), and the key/value
cache of the opening every prompt shares."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from c2s._errors import C2SError


def length_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (longest first)."""
    if batch_size < 1:
        raise C2SError("batch_size must be at least 1.")
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int, device) -> dict:
    """``input_ids``, ``attention_mask`` and ``position_ids`` (0 at each first real token)."""
    import torch

    n = max(len(s) for s in seqs)
    ids = np.full((len(seqs), n), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), n), dtype=np.int64)
    for i, s in enumerate(seqs):
        if len(s):
            ids[i, n - len(s) :] = s
            mask[i, n - len(s) :] = 1
    pos = np.maximum(mask.cumsum(1) - 1, 0)
    return {
        "input_ids": torch.from_numpy(ids).to(device),
        "attention_mask": torch.from_numpy(mask).to(device),
        "position_ids": torch.from_numpy(pos).to(device),
    }


def common_prefix(seqs: Sequence[Sequence[int]], limit: int) -> int:
    """Length of the prefix all ``seqs`` share, at most ``limit``."""
    n = limit
    for s in seqs[1:]:
        m = 0
        while m < n and s[m] == seqs[0][m]:
            m += 1
        n = m
    return n


def cache_arg(lm) -> str:
    """The name under which ``lm``'s forward takes a key/value cache: ``cache`` in newer
    transformers 5 releases, ``past_key_values`` (deprecated there) before."""
    base = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
    return _cache_arg_of(type(base))


@functools.cache
def _cache_arg_of(cls) -> str:
    # once per model class: decoding loops pass the cache at every step
    import inspect

    return "cache" if "cache" in inspect.signature(cls.forward).parameters else "past_key_values"


def with_cache(lm, cache) -> dict:
    """``{cache_arg(lm): cache}``: keyword arguments passing ``cache`` to ``lm``."""
    return {cache_arg(lm): cache}


def returned_cache(out):
    """The key/value cache a forward pass returned (``cache``, or ``past_key_values`` in
    older releases)."""
    got = getattr(out, "cache", None)
    return got if got is not None else out.past_key_values


def repeat_cache(cache, n: int):
    """A new cache with every batch row repeated ``n`` times (the original is untouched)."""
    from transformers import DynamicCache

    layers = [
        (layer.keys.repeat_interleave(n, 0), layer.values.repeat_interleave(n, 0))
        for layer in cache.layers
    ]
    return DynamicCache(ddp_cache_data=layers)


class Preamble:
    """The key/value cache of the tokens every prompt starts with (the template's constant
    opening), computed once and shared by every batch. Shorter than ``min_len`` tokens it is
    not worth a separate pass and ``n`` is 0."""

    def __init__(self, lm, seqs: Sequence[Sequence[int]], dev, min_len: int = 16):
        import torch

        n = common_prefix(seqs, min(len(s) for s in seqs) - 1)  # each keeps a token of its own
        self.n = n if n >= min_len else 0
        self.cache = None
        if self.n:
            ids = torch.as_tensor([list(seqs[0][: self.n])], device=dev)
            self.cache = returned_cache(lm(input_ids=ids, use_cache=True, logits_to_keep=1))

    def cache_for(self, batch: int):
        """A fresh cache holding the preamble for ``batch`` rows (None without one).

        Cache layers replace their tensors when they grow (never write into them), so shallow
        copies whose tensors are broadcast views of the preamble's are enough."""
        import copy

        if not self.n:
            return None
        c = copy.copy(self.cache)
        c.layers = [copy.copy(layer) for layer in self.cache.layers]
        for layer in c.layers:
            layer.keys = layer.keys.expand(batch, -1, -1, -1)
            layer.values = layer.values.expand(batch, -1, -1, -1)
        return c
