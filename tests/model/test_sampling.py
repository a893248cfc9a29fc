"""Per-sequence random streams: the integer hashing matches a plain-Python splitmix64, the
Gumbel-max draw follows the softmax, and a sequence's draws do not depend on its batch."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from c2s.model._sampling import row_keys, sample, splitmix64, uniforms  # noqa: E402


def test_tensor_hashing_equals_python_splitmix64():
    rng = np.random.default_rng(0)
    seeds = [int(x) for x in rng.integers(0, 2**63, 6)] + [0, 2**63 - 1]
    keys = row_keys(7, range(len(seeds)), 3)
    u = uniforms(keys, 5, "cpu").numpy()
    for b, key in enumerate(keys):
        for v in range(5):
            h = splitmix64((key + v * 0x9E3779B97F4A7C15) & (2**64 - 1))
            assert u[b, v] == ((h >> 11) + 0.5) / 2**53
    assert ((u > 0) & (u < 1)).all()
    # a key depends on the seed, the sequence and the step
    assert len({*row_keys(7, [0], 0), *row_keys(8, [0], 0), *row_keys(7, [1], 0)}) == 3
    assert row_keys(7, [0], 0) != row_keys(7, [0], 1)


def test_draws_follow_the_softmax_with_filters():
    logits = torch.tensor([[2.0, 1.0, 0.0, float("-inf"), -1.0]]).repeat(20000, 1)
    keys = row_keys(3, range(20000), 0)
    got = np.bincount(sample(logits, 1.0, None, None, keys).numpy(), minlength=5) / 20000
    want = torch.softmax(logits[0], -1).numpy()
    np.testing.assert_allclose(got, want, atol=0.012)
    assert got[3] == 0  # never a forbidden token
    hot = np.bincount(sample(logits, 0.5, None, None, keys).numpy(), minlength=5) / 20000
    np.testing.assert_allclose(hot, torch.softmax(logits[0] / 0.5, -1).numpy(), atol=0.012)
    top2 = set(sample(logits, 1.0, 2, None, keys).tolist())
    assert top2 == {0, 1}
    nucleus = set(sample(logits, 1.0, None, 0.6, keys).tolist())  # p(0) = 0.64 reaches 0.6
    assert nucleus == {0}
    assert (sample(logits[:3], 0.0, None, None, []) == 0).all()


def test_a_row_draws_the_same_in_any_batch():
    logits = torch.randn(6, 50, generator=torch.Generator().manual_seed(0))
    whole = sample(logits, 1.0, None, None, row_keys(5, range(6), 2))
    parts = [sample(logits[[i]], 1.0, None, None, row_keys(5, [i], 2)) for i in range(6)]
    assert whole.tolist() == torch.cat(parts).tolist()
