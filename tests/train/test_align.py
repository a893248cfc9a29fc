"""GRPO alignment through TRL: a reward changes what the policy says; bad rewards are refused
before any training."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

from c2s import C2SError
from c2s.model import C2SModel
from c2s.train import align, alignment_prompts, fine_tune

TARGET = "cd14+ monocyte"


def _prefers(completions, **_):
    return [1.0 if str(c).strip().rstrip(".").strip().lower() == TARGET else 0.0
            for c in completions]  # fmt: skip


def _share(model_dir, prompts) -> float:
    """How often sampled answers are the preferred label (same seed before and after)."""
    import torch

    m = C2SModel.from_pretrained(model_dir, device="cpu")
    tok = m.tokenizer
    torch.manual_seed(0)
    hits = 0
    for p in prompts:
        ids = torch.tensor([tok(p, add_special_tokens=False)["input_ids"]])
        out = m.model.generate(ids, do_sample=True, max_new_tokens=8,
                               pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)  # fmt: skip
        hits += _prefers([tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)])[0]
    return hits / len(prompts)


def test_a_reward_for_one_label_makes_the_policy_choose_it_more_often(pbmc_dataset, tmp_path):
    m = C2SModel.from_scratch(pbmc_dataset, max_length=256, device="cpu", preset="tiny", seed=0)
    sft = tmp_path / "sft"
    fine_tune(
        m, pbmc_dataset, output_dir=sft, tasks=["cell_type_prediction"], n_genes=20, epochs=2,
        batch_size=16, learning_rate=2e-3, eval_split=None, probe=False, calibrate=False, seed=0,
    )  # fmt: skip
    held = alignment_prompts(pbmc_dataset, "cell_type_prediction", n_genes=20,
                             split="validation", limit=48)["prompt"]  # fmt: skip
    before = _share(sft, held)
    out = tmp_path / "aligned"
    res = align(sft, pbmc_dataset, out, rewards=[_prefers], n_genes=20, steps=20,
                learning_rate=5e-4, max_prompts=64, seed=0)  # fmt: skip
    after = _share(out, held)
    assert after > before + 0.05, (before, after)
    assert res.steps == 20 and res.mean_reward() is not None
    log = json.loads((out / "train_log.json").read_text())
    assert any("rewards/_prefers/mean" in h for h in log["log"])
    assert "alignment" in json.loads((out / "c2s_config.json").read_text())["training"]


def test_bad_rewards_are_refused_before_training(pbmc_dataset, tmp_path):
    m = C2SModel.from_scratch(pbmc_dataset, max_length=256, device="cpu", seed=0)
    with pytest.raises(C2SError, match="Unknown reward 'acuracy'"):
        align(m, pbmc_dataset, tmp_path / "a", rewards=["label", "acuracy:2"], n_genes=10)
    with pytest.raises(C2SError, match="reads the column\\(s\\) \\['reference_cell'\\]"):
        align(m, pbmc_dataset, tmp_path / "b", rewards=["expression_similarity"], n_genes=10)
    with pytest.raises(C2SError, match="multiple of group_size"):
        align(m, pbmc_dataset, tmp_path / "c", batch_size=12, group_size=8)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
