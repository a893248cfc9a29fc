"""Sampling a token per sequence with a random stream of its own.

Each sequence draws from a counter-based generator keyed by ``(seed, sequence index, step)``:
splitmix64 hashes of the key and each token id give one uniform number per token, and the
Gumbel-max trick turns them into an exact sample of the softmax. What a sequence draws does
not depend on its batch-mates, on the batch order, on how many processes share the work, or
on the device (the hashing is integer arithmetic).
"""

from __future__ import annotations

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def _signed(x: int) -> int:
    """A 64-bit pattern as the int64 torch stores."""
    x &= _MASK64
    return x - (1 << 64) if x >= 1 << 63 else x


def splitmix64(x: int) -> int:
    """One splitmix64 step on a Python int (the pattern as unsigned)."""
    z = (x + _GOLDEN) & _MASK64
    z = ((z ^ (z >> 30)) * _M1) & _MASK64
    z = ((z ^ (z >> 27)) * _M2) & _MASK64
    return z ^ (z >> 31)


def _srl(x, s: int):
    """Logical right shift of int64 tensors (torch's ``>>`` is arithmetic)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def _splitmix64_t(x):
    """splitmix64 on int64 tensors (wrap-around arithmetic, same bits as :func:`splitmix64`)."""
    z = x + _signed(_GOLDEN)
    z = (z ^ _srl(z, 30)) * _signed(_M1)
    z = (z ^ _srl(z, 27)) * _signed(_M2)
    return z ^ _srl(z, 31)


def row_keys(seed: int, rows, step: int) -> list[int]:
    """The key of each sequence ``rows[b]`` (its index among all prompts) at ``step``."""
    base = splitmix64(seed & _MASK64)
    return [_signed(splitmix64(splitmix64(base ^ int(r)) + step)) for r in rows]


def uniforms(keys: list[int], n: int, device):
    """``(len(keys), n)`` float64 uniforms in (0, 1), one row per key."""
    import torch

    k = torch.as_tensor(keys, dtype=torch.int64, device=device)[:, None]
    v = torch.arange(n, dtype=torch.int64, device=device)[None, :]
    h = _splitmix64_t(k + v * _signed(_GOLDEN))
    return (_srl(h, 11).double() + 0.5) / float(1 << 53)


def sample(logits, temperature: float, top_k: int | None, top_p: float | None, keys: list[int]):
    """One token per row of ``logits`` (-inf where not allowed): greedy at temperature 0, else
    a draw from the softmax at ``temperature`` after top-k / top-p filtering, with row ``b``
    using its own uniforms ``keys[b]``."""
    import torch

    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), -1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        srt, idx = torch.sort(logits, -1, descending=True)
        p = torch.softmax(srt, -1)
        drop = p.cumsum(-1) - p > top_p  # keep the smallest set reaching top_p
        srt = srt.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, idx, srt)
    # Gumbel-max: argmax(logits + Gumbel noise) is distributed as softmax(logits).
    gumbel = -torch.log(-torch.log(uniforms(keys, logits.shape[-1], logits.device)))
    return (logits.double() + gumbel).argmax(-1)


__all__ = ["row_keys", "sample", "splitmix64", "uniforms"]
