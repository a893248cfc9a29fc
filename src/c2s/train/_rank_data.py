"""Training data under torchrun / accelerate launch: each process reads, renders and tokenizes
its own contiguous range of the training cells and holds only those examples.

Every process learns the lengths of all examples (4 bytes each) and deals the batches the
same way: process ``r``'s examples are ordered by its own :class:`ShuffledLengthBuckets`,
cut into per-device batches, and the batches of all processes are interleaved, so that the
Trainer's sharding (batch ``i`` to process ``i % world``) hands every process its own
batches. Each epoch every process runs the same number of full batches (the smallest
share's); the few examples left over change from epoch to epoch.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import numpy as np

from c2s._errors import C2SError
from c2s.train._sampler import ShuffledLengthBuckets


def launch() -> tuple[int, int]:
    """``(rank, world size)`` of this torchrun / accelerate launch (``(0, 1)`` alone)."""
    try:
        return int(os.environ.get("RANK", "0")), max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 0, 1


def local_rows(rows: np.ndarray, rank: int, world: int) -> np.ndarray:
    """This process's contiguous share of ``rows``."""
    return np.array_split(np.asarray(rows), world)[rank]


def all_gather(obj) -> list:
    """``obj`` of every process, in rank order (starts the process group as the Trainer
    would, through accelerate, when it is not up yet)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        import torch
        from accelerate import PartialState

        PartialState(cpu=not torch.cuda.is_available())  # as the Trainer's arguments do
    got = [None] * dist.get_world_size()
    dist.all_gather_object(got, obj)
    return got


class RankExamples:
    """All processes' training examples as one map-style dataset of which this process holds
    its own share (a local :class:`ExampleSet`); asking for another process's example is an
    error. ``lengths()`` covers every example."""

    def __init__(self, local, rank: int, counts: list[int], lengths: np.ndarray):
        self.local = local
        self.rank = rank
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.all_lengths = np.asarray(lengths, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, j):
        k = int(j) - int(self.offsets[self.rank])
        if not 0 <= k < len(self.local):
            raise C2SError(
                f"Process {self.rank} was asked for training example {j}, which another "
                "process holds: the batches were not dealt by c2s's sampler."
            )
        item = self.local[k]
        item["example"] = int(j)
        return item

    def lengths(self) -> list[int]:
        return self.all_lengths.tolist()

    def sampler(self, batch_size: int, group: int, seed: int, by_length: bool = True):
        return RankInterleaved(
            self.all_lengths if by_length else np.ones_like(self.all_lengths),
            self.offsets,
            batch_size,
            group,
            seed,
        )


class RankInterleaved:
    """The index order of :class:`RankExamples` (see the module docstring)."""

    def __init__(self, lengths, offsets, batch_size: int, group: int, seed: int):
        self.offsets = offsets
        self.batch_size = int(batch_size)
        self.parts = [
            ShuffledLengthBuckets(lengths[a:b], group, seed=seed)
            for a, b in itertools.pairwise(offsets)
        ]
        self.n_batches = min(len(p) for p in self.parts) // self.batch_size
        if self.n_batches == 0:
            raise C2SError(
                f"A process has fewer than {self.batch_size} training examples: use fewer "
                "processes or a smaller batch size."
            )

    def set_epoch(self, epoch: int) -> None:
        for p in self.parts:
            p.set_epoch(epoch)

    def __len__(self) -> int:
        return self.n_batches * self.batch_size * len(self.parts)

    def order(self) -> np.ndarray:
        m, b = self.n_batches, self.batch_size
        own = [
            p.order()[: m * b].reshape(m, b) + a
            for p, a in zip(self.parts, self.offsets[:-1], strict=True)
        ]
        return np.stack(own, axis=1).ravel()  # batch i of every process, then batch i + 1

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())


def share_examples(local, stats: dict, labels: dict, rank: int, world: int):
    """This process's examples as a :class:`RankExamples`; the statistics and the labels seen
    (which the saved model's config lists) of all processes combined."""
    got = all_gather((len(local), local.flat.lengths()[local.index], stats, labels))
    merged_labels: dict[str, list] = {}
    merged_stats = {"n_shortened": 0, "n_dropped": 0}
    organisms: set = set()
    perturbations: set = set()
    for _, _, st, lab in got:
        merged_stats["n_shortened"] += st.get("n_shortened", 0)
        merged_stats["n_dropped"] += st.get("n_dropped", 0)
        organisms.update(st.get("organisms", []))
        perturbations.update(st.get("perturbations", []))
        for col, values in lab.items():
            merged_labels[col] = sorted({*merged_labels.get(col, []), *values})
    if organisms:
        merged_stats["organisms"] = sorted(organisms)
    if perturbations:
        merged_stats["perturbations"] = sorted(perturbations)
    lengths = np.concatenate([g[1] for g in got])
    out = RankExamples(local, rank, [g[0] for g in got], lengths)
    return out, merged_stats, merged_labels


__all__ = ["RankExamples", "RankInterleaved", "launch", "local_rows", "share_examples"]
