"""Run by tests/cli/test_torchrun.py, alone or under ``torchrun --nproc_per_node 2``: the
inference commands on one model and one dataset, each writing OUT_DIR/<verb>.csv."""

from __future__ import annotations

import logging
import os
import sys

from c2s.cli import main

model, dataset, out = sys.argv[1:4]
# each process logs how many batches it ran (the CLI's own logging setup then does nothing)
logging.basicConfig(filename=f"{out}/log{os.environ.get('RANK', '')}.txt", level=logging.INFO)
cells = [dataset, "--split", "test", "--batch-size", "3"]
runs = {
    "predict": ["predict", model, *cells, "--top-k", "2"],
    "constrained": ["predict", model, *cells, "--mode", "constrained"],
    "embed": ["embed", model, *cells],
    "generate": ["generate", model, "--n-per-label", "2", "--n-genes", "12", "--batch-size", "3"],
    "perturb": [
        "perturb",
        model,
        *cells,
        "--perturbations",
        "IFNG",
        "TNF",
        "--n-genes",
        "8",
        "--perturbation-key",
        "none",
    ],
}
for name, argv in runs.items():
    code = main([*argv, "--out", f"{out}/{name}.csv"])
    if code:
        sys.exit(code)
