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
    a, b = set(ranks[0]["seen"]), set(ranks[1]["seen"])
    n = ranks[0]["n_train"]
    assert len(ranks[0]["seen"]) == len(a) and a.isdisjoint(b)
    assert a | b == set(range(n))  # one epoch: every example once, split between the ranks
    assert ranks[0]["steps"] == ranks[1]["steps"] == n // 16  # global batch 2 x 8
    assert ranks[0]["digest"] == ranks[1]["digest"]  # gradients were all-reduced
    assert (out / "c2s_config.json").exists() and (out / "model.safetensors").exists()
