"""Run by tests/train/test_ddp.py under ``torchrun --nproc_per_node 2``: trains one epoch
and records, per rank, which training examples (and cells) its batches held and how many
examples it encoded."""

import json
import os
import sys

import torch

import c2s.train._rank_data as rank_data
import c2s.train._trainer as trainer_mod
from c2s.model import C2SModel
from c2s.train import fine_tune

dataset, out = sys.argv[1], sys.argv[2]
rank = int(os.environ["RANK"])
seen: list[int] = []
rows_read: list[int] = []  # dataset rows of the training cells this process encoded


class Recording(trainer_mod.CountingCollator):
    def __call__(self, features):
        seen.extend(int(f["example"]) for f in features)
        return super().__call__(features)


trainer_mod.CountingCollator = Recording
held: list[int] = []  # examples this process encoded and holds
share = trainer_mod.share_examples


def recording_share(local, *args):
    held.append(len(local))
    return share(local, *args)


trainer_mod.share_examples = recording_share
local_rows = rank_data.local_rows


def recording_rows(rows, *args):
    out = local_rows(rows, *args)
    rows_read.extend(int(r) for r in out)
    return out


rank_data.local_rows = recording_rows
model = C2SModel.from_scratch(dataset, max_length=128, device="cpu", seed=0)
result = fine_tune(
    model,
    dataset,
    out=out,
    epochs=1,
    n_genes=12,
    batch_size=8,
    eval_split=None,
    logging_steps=5,
    class_balance=0.0,  # each example once: the ranks' shares must be disjoint
)
digest = float(sum(p.detach().double().sum() for p in model.model.parameters()))
record = {
    "rank": rank,
    "world_size": int(os.environ["WORLD_SIZE"]),
    "seen": seen,
    "rows": rows_read,
    "held": held,
    "n_train": result.n_train_examples,
    "steps": result.steps,
    "digest": digest,
    "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None,
}
with open(os.path.join(os.path.dirname(out), f"rank{rank}.json"), "w") as f:
    json.dump(record, f)
