"""Data-parallel training with 2 CPU processes (gloo), launched as Accelerate launches it:
``torchrun --nproc_per_node 2``. Both ranks must see disjoint data and end with equal weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")


def test_two_processes_see_disjoint_data(pbmc_dataset, tmp_path):
    out = tmp_path / "run" / "model"
    out.parent.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "C2S_NO_PROGRESS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--standalone", str(Path(__file__).with_name("ddp_worker.py")),
        str(pbmc_dataset.path), str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((out.parent / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["backend"] == "gloo"
    # each process encoded only its own contiguous range of the training cells
    held = [r["held"][0] for r in ranks]
    n = ranks[0]["n_train"]
    assert sum(held) == n and abs(held[0] - held[1]) <= 1
    r0, r1 = ranks[0]["rows"], ranks[1]["rows"]
    assert r0 and r1 and max(r0) < min(r1)  # disjoint ranges of cells, rank 0's first
    train = set(pbmc_dataset.split_indices()["train"].tolist())
    assert set(r0) | set(r1) == train and len(r0) + len(r1) == len(train)
    # ... and its batches held only its own examples, each once
    a, b = set(ranks[0]["seen"]), set(ranks[1]["seen"])
    assert len(ranks[0]["seen"]) == len(a) and a.isdisjoint(b)
    assert a <= set(range(held[0])) and b <= set(range(held[0], n))
    steps = min(held) // 8  # the same number of full batches on both
    assert ranks[0]["steps"] == ranks[1]["steps"] == steps
    assert len(a) == len(b) == 8 * steps  # one epoch: all but the last partial batch
    assert ranks[0]["digest"] == ranks[1]["digest"]  # gradients were all-reduced
    assert (out / "c2s_config.json").exists() and (out / "model.safetensors").exists()
    config = json.loads((out / "c2s_config.json").read_text())
    labels = pbmc_dataset.obs(["cell_type"])["cell_type"].astype(str)
    assert set(config["labels"]["cell_type"]) == set(labels.iloc[sorted(train)])  # both ranges
