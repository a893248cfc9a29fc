"""The order of training examples: batches of similar length, in a random order.

The Trainer's own length grouping sorts each window of examples by exact length and visits
the batches longest first. When prompts have one length (one token per gene, a fixed number
of genes) the label decides the length, so its batches held one cell type each, in the same
order every epoch: a from-scratch model was trained on one type after another. Measured on
PBMC (prediction only, 350 steps): 0.46 test accuracy with it, 0.77 with random order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np


class ShuffledLengthBuckets:
    """Index order for a DataLoader: similar lengths share a batch, batches come in a random
    order, and examples of nearly the same length are mixed at random.

    Each epoch (seeded by ``seed`` and the epoch the Trainer sets): a random permutation is
    cut into windows of ``window`` batches; inside a window, examples are ordered by a
    length bucket (lengths within a factor ``ratio`` share a bucket; ties keep the random
    order) and cut into batches; then every batch of the epoch is shuffled. Padding stays low
    (a batch spans at most one bucket, up to a window's edge), and no batch order or content
    follows the labels.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        seed: int = 0,
        window: int = 50,
        ratio: float = 1.25,
    ):
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.window = int(window)
        self.bucket = np.floor(np.log(np.maximum(self.lengths, 1)) / math.log(ratio))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def order(self) -> np.ndarray:
        """This epoch's indices (the DataLoader cuts them into consecutive batches)."""
        rng = np.random.default_rng([self.seed, 17, self.epoch])
        perm = rng.permutation(len(self.lengths))
        size = self.batch_size * self.window
        batches = []
        for a in range(0, len(perm), size):
            chunk = perm[a : a + size]
            chunk = chunk[np.argsort(self.bucket[chunk], kind="stable")]
            batches += [
                chunk[b : b + self.batch_size] for b in range(0, len(chunk), self.batch_size)
            ]
        # a short last batch stays last, so every other batch is full
        full = [b for b in batches if len(b) == self.batch_size]
        short = [b for b in batches if len(b) < self.batch_size]
        full = [full[i] for i in rng.permutation(len(full))]
        return np.concatenate(full + short) if batches else perm

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())
