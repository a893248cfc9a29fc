"""Perturbation training data: each perturbed cell paired with a control of its own context
(``context``, ``--context``), and held-out perturbations never in a training example."""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import c2s
from c2s.model import C2SModel
from c2s.train import TrainConfig, build_examples

HELD = ["PERT3", "PERT4+PERT5"]


@pytest.fixture(scope="module")
def pert_ds(tmp_path_factory):
    adata = c2s.datasets.synthetic_perturbation(n_cells=12, n_genes=120, n_targets=10, seed=3)
    out = tmp_path_factory.mktemp("pert") / "ds"
    return c2s.io.convert(adata, out, normalize=True, split_by="perturbation", holdout=HELD)


def test_controls_share_the_context_and_held_out_perturbations_stay_out(pert_ds):
    m = C2SModel.from_scratch(pert_ds, max_length=512, device="cpu")
    cfg = TrainConfig(tasks=["perturbation_prediction"], n_genes=20, context=["context"])
    ex, _, _ = build_examples(
        pert_ds, m.tokenizer, cfg, split="train", max_length=512, limit=None, weighted=False
    )
    rows = pert_ds.split_indices()["train"]
    obs = pert_ds.obs(["perturbation", "context"]).iloc[rows]
    pert = obs["perturbation"].astype(str).to_numpy()
    ctx = obs["context"].astype(str).to_numpy()
    n_perturbed = int((pert != "control").sum())
    assert len(ex) == n_perturbed > 0  # every perturbed training cell, once
    for j in range(len(ex)):
        control, perturbed = ex[j]["cells"]
        assert pert[control] == "control" and pert[perturbed] != "control"
        assert ctx[control] == ctx[perturbed]  # matched within the context
        assert pert[perturbed] not in HELD
    text = m.tokenizer.decode(np.concatenate([ex[j]["input_ids"] for j in range(len(ex))]))
    named = set(re.findall(r"perturbation: (\S+?)\.\s", text))
    assert named == set(pert[pert != "control"])  # every seen one, combinations by name
    assert not named & set(HELD) and "PERT2+PERT3" in named
