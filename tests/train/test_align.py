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


def _short(completions, **_):
    """A reward that always varies within a group (so every step has a gradient)."""
    return [-float(len(str(c))) for c in completions]


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
        m, pbmc_dataset, out=sft, tasks=["cell_type_prediction"], n_genes=20, epochs=2,
        batch_size=16, learning_rate=2e-3, eval_split=None, probe=False, calibrate=False, seed=0,
    )  # fmt: skip
    held = alignment_prompts(pbmc_dataset, "cell_type_prediction", n_genes=20,
                             split="validation", limit=48)["prompt"]  # fmt: skip
    before = _share(sft, held)
    out = tmp_path / "aligned"
    res = align(sft, pbmc_dataset, out, rewards=[_prefers], n_genes=20, max_steps=20,
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


def test_old_names_of_align_options_warn_and_work(pbmc_dataset, tmp_path):
    """align's ``steps`` is ``max_steps`` now and ``output_dir=`` is ``out=``: the old names
    still work for a release (keyword, YAML key), each with a FutureWarning naming the new
    one; a later source's new name overrides a file's old one."""
    from c2s.train import AlignConfig

    with pytest.warns(FutureWarning, match="steps= is now called max_steps="):
        assert AlignConfig(steps=7).max_steps == 7
    cfg = tmp_path / "run.yaml"
    cfg.write_text("steps: 5\n")
    with pytest.warns(FutureWarning, match="steps is now called max_steps"):
        assert AlignConfig.from_yaml(cfg).max_steps == 5
    with pytest.warns(FutureWarning):
        assert AlignConfig.from_yaml(cfg, max_steps=3).max_steps == 3
    with pytest.raises(C2SError, match="Give max_steps only"):
        AlignConfig.from_dict({"steps": 1, "max_steps": 2})
    assert AlignConfig().to_dict()["max_steps"] == 100 and "steps" not in AlignConfig().to_dict()
    m = C2SModel.from_scratch(pbmc_dataset, max_length=256, device="cpu", seed=0)
    with pytest.warns(FutureWarning) as seen, pytest.raises(C2SError, match="max_steps must be"):
        align(m, pbmc_dataset, output_dir=tmp_path / "a", steps=0)  # both reach the checks
    said = {str(w.message).split(" is ")[0] for w in seen}
    assert {"output_dir=", "steps"} <= said, said
    assert not (tmp_path / "a").exists()


def test_lora_alignment_leaves_the_base_weights_unchanged(trained_model, pbmc_dataset, tmp_path):
    import hashlib

    import torch

    def digest():
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(trained_model.iterdir()) if p.is_file()}  # fmt: skip

    on_disk = digest()
    m = C2SModel.from_pretrained(trained_model, device="cpu")
    before = {k: v.clone() for k, v in m.model.state_dict().items()}
    out = tmp_path / "lora"
    align(m, pbmc_dataset, out, rewards=[_short], lora=True, lora_r=4, max_steps=3,
          learning_rate=1e-2, max_prompts=16, n_genes=30, seed=0)  # fmt: skip
    changed_base, lora_b = [], []
    for k, v in m.model.state_dict().items():
        if "lora_B" in k:
            lora_b.append(float(v.abs().max()))
        elif "lora_" not in k:
            k0 = k.replace("base_model.model.", "").replace(".base_layer", "")
            if not torch.equal(v, before[k0]):
                changed_base.append(k)
    assert changed_base == [] and lora_b and max(lora_b) > 0  # B starts at zero
    assert digest() == on_disk  # the model aligned from is untouched
    cfg = json.loads((out / "c2s_config.json").read_text())
    assert cfg["adapter"] and cfg["base_model"] == str(trained_model)
    again = C2SModel.from_pretrained(out, device="cpu")
    assert again.is_peft
    ids = torch.tensor([m.tokenizer("CD74 LYZ S100A8.")["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(again.model(ids).logits, m.model(ids).logits)


def test_an_interrupted_alignment_resumes(trained_model, pbmc_dataset, tmp_path):
    from transformers import TrainerCallback

    from c2s._errors import OutputExistsError

    class Interrupt(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            if state.global_step == 2:
                raise KeyboardInterrupt

    out = tmp_path / "run"
    opts = {
        "max_steps": 4,
        "save_steps": 2,
        "max_prompts": 16,
        "n_genes": 30,
        "learning_rate": 1e-3,
        "seed": 0,
    }
    with pytest.raises(KeyboardInterrupt):
        align(trained_model, pbmc_dataset, out, callbacks=[Interrupt()], **opts)
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    assert not (out / "c2s_config.json").exists()  # not a finished model
    with pytest.raises(OutputExistsError, match="interrupted"):
        align(trained_model, pbmc_dataset, out, **opts)
    res = align(trained_model, pbmc_dataset, out, resume="latest", **opts)
    assert (res.steps, res.start_step) == (4, 2)
    assert [h["step"] for h in res.log_history if "reward" in h] == [1, 2, 3, 4]
    assert (out / "c2s_config.json").exists() and (out / "checkpoints" / "checkpoint-4").is_dir()
    assert json.loads((out / "train_log.json").read_text())["options"]["resume"] == "latest"


def test_gene_tasks_sample_only_distinct_known_genes_inside_grpo(
    trained_model, pbmc_dataset, tmp_path
):
    seen = []

    def record(completions, **_):
        seen.extend(completions)
        return [0.0] * len(completions)

    genes = set(C2SModel.from_pretrained(trained_model, device="cpu").config.genes)
    res = align(trained_model, pbmc_dataset, tmp_path / "gen", task="cell_type_generation",
                rewards=[record, "gene_validity"], max_steps=2, max_prompts=8, n_genes=30,
                temperature=1.5, seed=0)  # fmt: skip
    assert len(seen) == 2 * 16
    for text in seen:
        words = text.strip().removesuffix(".").split()
        assert words and set(words) <= genes, text
        assert len(words) == len(set(words)), text
    assert "gene_validity" in res.rewards()


def test_align_cli_with_a_config_file_and_flags(trained_model, pbmc_dataset, tmp_path, capsys):
    from c2s.cli import main

    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "max_steps: 5\nmax-prompts: 16\nn_genes: 30\nrewards: [label]\nlearning_rate: 1e-3\n"
    )
    out = tmp_path / "cli"
    argv = ["align", str(trained_model), str(pbmc_dataset.path), "--out", str(out),
            "--config", str(cfg), "--max-steps", "2", "--reward", "label:2", "--json"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and summary["tokens_per_second"] > 0
    assert set(summary["rewards"]) == {"label"}
    options = json.loads((out / "train_log.json").read_text())["options"]
    assert options["rewards"] == ["label:2"] and options["max_steps"] == 2
    assert options["max_prompts"] == 16 and options["learning_rate"] == 1e-3
    assert (out / "alignment.png").stat().st_size > 0
    aligned = C2SModel.from_pretrained(out, device="cpu")
    assert aligned.config.training["alignment"]["max_steps"] == 2
    # bad options: one line, nothing written
    for bad, msg in [
        (["--reward", "labell"], "Unknown reward 'labell'"),
        (["--group-size", "1"], "group_size must be at least 2"),
        (["--task", "cell_typing"], "cell_typing"),
    ]:
        code = main(["align", str(trained_model), str(pbmc_dataset.path), "--out",
                     str(tmp_path / "bad"), *bad])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and msg in err and err.count("\n") == 1, err
        assert not (tmp_path / "bad").exists()
    cfg.write_text("stepz: 3\n")
    assert main([*argv[:-5], "--json"]) == 2
    assert "Unknown alignment option(s) ['stepz']" in capsys.readouterr().err
