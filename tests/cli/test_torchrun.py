"""Inference over 2 CPU processes (``torchrun --nproc_per_node 2``, gloo): each process runs
every other batch, the first writes one output, and that output equals a single process's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

WORKER = str(Path(__file__).with_name("torchrun_worker.py"))
VERBS = ("predict", "constrained", "embed", "generate", "perturb")


def _run(cmd, out: Path) -> dict[str, pd.DataFrame]:
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "C2S_NO_PROGRESS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {v: pd.read_csv(out / f"{v}.csv", index_col=0) for v in VERBS}


def test_two_processes_write_what_one_writes(trained_model, pbmc_dataset, tmp_path):
    args = [WORKER, str(trained_model), str(pbmc_dataset.path)]
    one = _run([sys.executable, *args, str(tmp_path / "one")], tmp_path / "one")
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    two = _run([*launch, "--standalone", *args, str(tmp_path / "two")], tmp_path / "two")
    n_test = int((pbmc_dataset.obs(["cell_type"])["split"] == "test").sum())
    assert len(one["predict"]) == len(one["embed"]) == n_test > 6  # several batches of 3
    assert len(one["perturb"]) == 2 * n_test
    for verb in VERBS:
        pd.testing.assert_frame_equal(two[verb], one[verb], check_exact=True)
    # every inference call split its batches: each process ran its share, together all
    runs = [
        [tuple(map(int, m)) for m in re.findall(r"process (\d) of 2 runs (\d+) of (\d+)", log)]
        for log in ((tmp_path / "two" / f"log{r}.txt").read_text() for r in (0, 1))
    ]
    assert len(runs[0]) == len(runs[1]) >= len(VERBS)
    for (r0, mine0, total), (r1, mine1, total1) in zip(*runs, strict=True):
        assert (r0, r1) == (0, 1) and total == total1 and mine0 + mine1 == total
        assert mine0 >= mine1 >= 1 or total == 1
    # the outputs hold real results, not empty columns
    assert one["predict"]["c2s_prediction_top2"].notna().all()
    assert one["generate"]["c2s_sentence"].str.split().map(len).eq(12).all()
    assert one["embed"].abs().to_numpy().sum() > 0
