"""Length-bucketed batches in a random order: little padding, no order that follows labels."""

from __future__ import annotations

import numpy as np

from c2s.train._sampler import ShuffledLengthBuckets


def batches(sampler, size):
    order = sampler.order()
    return [order[i : i + size] for i in range(0, len(order), size)]


def test_every_example_once_per_epoch_reproducibly():
    lengths = np.random.default_rng(0).integers(20, 400, 1000)
    s = ShuffledLengthBuckets(lengths, 16, seed=3)
    a = s.order()
    assert sorted(a.tolist()) == list(range(1000))
    assert np.array_equal(a, ShuffledLengthBuckets(lengths, 16, seed=3).order())
    s.set_epoch(1)
    assert not np.array_equal(a, s.order())


def test_batches_share_a_length_bucket():
    lengths = np.random.default_rng(1).integers(20, 400, 2000)
    s = ShuffledLengthBuckets(lengths, 16, seed=0, ratio=1.25)
    ratios = [lengths[b].max() / lengths[b].min() for b in batches(s, 16)]
    # inside a window every batch lies in one or two neighbouring buckets
    assert np.median(ratios) < 1.25 and np.mean(np.asarray(ratios) < 1.6) > 0.9
    padding = sum(lengths[b].max() * len(b) - lengths[b].sum() for b in batches(s, 16))
    random_order = np.random.default_rng(2).permutation(2000)
    rand_pad = sum(
        lengths[b].max() * len(b) - lengths[b].sum()
        for b in (random_order[i : i + 16] for i in range(0, 2000, 16))
    )
    assert padding < 0.2 * rand_pad


def test_labels_that_set_the_length_do_not_set_the_batches():
    """Prompts of one length whose label adds 1-3 tokens: the Trainer's own grouping gave
    batches of one label in a fixed order; here labels mix and batch order is random."""
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 4, 560)
    lengths = 60 + labels  # the label decides the length
    s = ShuffledLengthBuckets(lengths, 16, seed=0)
    mixed = [len(set(labels[b])) > 1 for b in batches(s, 16)]
    assert np.mean(mixed) > 0.9
    firsts = [labels[b[0]] for b in batches(s, 16)]
    assert firsts != sorted(firsts) and firsts != sorted(firsts, reverse=True)


def test_processes_are_dealt_only_their_own_batches():
    """Under torchrun each process holds its own examples: batch i of the interleaved order
    goes to process i % world (the Trainer's sharding) and comes from that process's range,
    length-grouped as one process would group its share."""
    from c2s.train._rank_data import RankInterleaved

    rng = np.random.default_rng(0)
    counts = [50, 47, 49]
    lengths = rng.integers(10, 200, sum(counts))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    s = RankInterleaved(lengths, offsets, batch_size=4, group=8, seed=2)
    order = s.order()
    assert len(order) == len(s) == 3 * (47 // 4) * 4  # the smallest share's full batches
    batches = order.reshape(-1, 4)
    for i, b in enumerate(batches):
        r = i % 3
        assert offsets[r] <= b.min() and b.max() < offsets[r + 1]
    for r in range(3):  # process r's batches are its own sampler's order, in full batches
        own = batches[r::3].ravel() - offsets[r]
        alone = ShuffledLengthBuckets(lengths[offsets[r] : offsets[r + 1]], 8, seed=2).order()
        assert own.tolist() == alone[: len(own)].tolist()
    assert len(set(order.tolist())) == len(order)
    s.set_epoch(1)
    assert s.order().tolist() != order.tolist()
