"""fine_tune: the loss falls, splits and batches are seeded, LoRA trains only adapters and
reloads exactly, runs resume, and bad input is refused."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from transformers import AutoModelForCausalLM, TrainerCallback  # noqa: E402

import c2s  # noqa: E402
import c2s.train._trainer as trainer_mod  # noqa: E402
from c2s._errors import C2SError, OutputExistsError  # noqa: E402
from c2s.encoding import IGNORE  # noqa: E402
from c2s.model import CONFIG_FILE, C2SModel  # noqa: E402
from c2s.train import TrainConfig, build_examples, fine_tune  # noqa: E402

FAST = {
    "n_genes": 12, "batch_size": 8, "logging_steps": 1, "max_eval_examples": 16,
    "class_balance": 0.0,
}  # fmt: skip


def tiny(ds, **kw):
    return C2SModel.from_scratch(ds, max_length=128, device="cpu", **kw)


@pytest.fixture(scope="module")
def toy(tmp_path_factory, _pbmc):
    """24 PBMC cells of 3 types: small enough to memorize."""
    keep = _pbmc.obs["cell_type"].isin(["CD14+ Monocyte", "CD19+ B", "CD56+ NK"]).to_numpy()
    idx = np.flatnonzero(keep)[::9][:24]
    out = tmp_path_factory.mktemp("toy") / "toy"
    return c2s.io.convert(
        _pbmc[idx].copy(), out, obs_keys=["cell_type", "organism"], split_fractions=(1, 0, 0)
    )


def logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits


def test_loss_falls_on_a_memorizable_set(toy):
    m = tiny(toy)
    r = fine_tune(m, toy, max_steps=60, learning_rate=3e-3, eval_split=None, **FAST)
    steps, losses, _, _ = r.loss_curve()
    assert steps[0] == 1 and len(losses) == 60
    assert np.mean(losses[-5:]) < 0.35 * np.mean(losses[:3])
    assert r.tokens > 0 and 0 <= r.padded_fraction < 0.5
    assert m.config.tasks == ["cell_type_prediction"]
    assert set(m.config.labels["cell_type"]) == {"CD14+ Monocyte", "CD19+ B", "CD56+ NK"}


def test_mixing_weights_and_limits(pbmc_dataset):
    m = tiny(pbmc_dataset)
    n_train = len(pbmc_dataset.split_indices()["train"])

    def count(tasks, **kw):
        cfg = TrainConfig(tasks=tasks, n_genes=8, **kw)
        ex, _, _ = build_examples(
            pbmc_dataset,
            m.tokenizer,
            cfg,
            split="train",
            max_length=128,
            limit=cfg.max_train_examples,
            weighted=True,
        )
        return ex

    one = count(["cell_type_prediction"])
    assert len(one) == n_train
    mixed = count(["cell_type_prediction:2", "cell_type_generation:0.5"])
    assert len(mixed) == 2 * n_train + round(0.5 * n_train)
    assert sum(e["task"] == 1 for e in mixed) == round(0.5 * n_train)
    assert len(count(["cell_type_prediction"], max_train_examples=50)) == 50
    # Labels are -100 exactly on the prompt; EOS is the last trained token.
    e = one[0]
    first = next(i for i, v in enumerate(e["labels"]) if v != IGNORE)
    assert all(v == IGNORE for v in e["labels"][:first])
    assert e["labels"][first:] == e["input_ids"][first:]
    assert e["input_ids"][-1] == m.tokenizer.eos_token_id


class _Recorder(trainer_mod.CountingCollator):
    batches: ClassVar[list] = []

    def __call__(self, features):
        batch = super().__call__(features)
        _Recorder.batches.append(batch["input_ids"].clone())
        return batch


def first_batch(ds, tmp_path, name, seed, monkeypatch):
    _Recorder.batches = []
    monkeypatch.setattr(trainer_mod, "CountingCollator", _Recorder)
    m = tiny(ds)
    fine_tune(m, ds, out=tmp_path / name, max_steps=1, seed=seed, eval_split=None, **FAST)
    return _Recorder.batches[0], json.loads((tmp_path / name / "split.json").read_text())


def test_same_seed_same_split_and_first_batch(pbmc_dataset, tmp_path, monkeypatch):
    b1, s1 = first_batch(pbmc_dataset, tmp_path, "a", 0, monkeypatch)
    b2, s2 = first_batch(pbmc_dataset, tmp_path, "b", 0, monkeypatch)
    b3, _ = first_batch(pbmc_dataset, tmp_path, "c", 1, monkeypatch)
    assert torch.equal(b1, b2)
    assert not torch.equal(b1, b3)
    assert s1["train"] == s2["train"] == pbmc_dataset.split_indices()["train"].tolist()
    assert set(s1["train"]).isdisjoint(s1["validation"]) and set(s1["train"]).isdisjoint(s1["test"])


def test_lora_trains_only_adapters_and_reloads_exactly(toy, tmp_path):
    tiny(toy).save(tmp_path / "base")
    m = C2SModel.from_pretrained(tmp_path / "base", device="cpu")
    before = {k: v.clone() for k, v in m.model.state_dict().items()}
    r = fine_tune(
        m,
        toy,
        out=tmp_path / "run",
        lora=True,
        lora_r=4,
        max_steps=15,
        learning_rate=1e-2,
        eval_split=None,
        **FAST,
    )
    assert r.trainable_parameters < 0.2 * r.total_parameters
    changed_base, changed_lora = [], []
    for k, v in m.model.state_dict().items():
        if "lora_" in k:
            changed_lora.append(k)
            continue
        k0 = k.replace("base_model.model.", "").replace(".base_layer", "")
        if not torch.equal(v, before[k0]):
            changed_base.append(k)
    assert changed_base == [] and changed_lora
    assert (tmp_path / "run" / "adapter_config.json").exists()
    cfg = json.loads((tmp_path / "run" / CONFIG_FILE).read_text())
    assert cfg["adapter"] and cfg["base_model"] == str(tmp_path / "base")
    ids = m.tokenizer("CD74 LYZ S100A8.")["input_ids"]
    again = C2SModel.from_pretrained(tmp_path / "run", device="cpu")
    torch.testing.assert_close(logits(again.model, ids), logits(m.model, ids))
    assert not torch.equal(
        logits(again.model, ids),
        logits(C2SModel.from_pretrained(tmp_path / "base", device="cpu").model, ids),
    )
    # Merged: a plain transformers model with the same outputs.
    m.save(tmp_path / "merged", merge=True)
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    torch.testing.assert_close(logits(plain, ids), logits(again.model, ids), rtol=1e-4, atol=1e-4)


def test_lora_on_unsaved_base_needs_merge(toy, tmp_path):
    with pytest.raises(C2SError, match="merge"):
        fine_tune(tiny(toy), toy, out=tmp_path / "r", lora=True, max_steps=1, **FAST)


class _Interrupt(TrainerCallback):
    def on_save(self, args, state, control, **kw):
        if state.global_step == 2:
            raise KeyboardInterrupt


@pytest.mark.parametrize("arch", ["gpt_neox", "llama"])
def test_resume_restores_exactly(toy, tmp_path, arch):
    """Interrupted at step 2 and resumed, a run ends with the same weights as the same run
    straight through: weights (the output layer included: GPT-NeoX checkpoints store it under
    an older name), optimizer, schedule and data order all come back."""
    opts = dict(max_steps=4, save_steps=2, eval_split=None, learning_rate=3e-3, **FAST)
    straight = tiny(toy, architecture=arch)
    fine_tune(straight, toy, out=tmp_path / "a", **opts)
    with pytest.raises(KeyboardInterrupt):
        fine_tune(
            tiny(toy, architecture=arch), toy, out=tmp_path / "b",
            callbacks=[_Interrupt()], **opts,
        )  # fmt: skip
    resumed = tiny(toy, architecture=arch)
    fine_tune(resumed, toy, out=tmp_path / "b", resume="latest", **opts)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6, msg=k)


def test_resume_refuses_a_checkpoint_that_does_not_fit(toy, tmp_path):
    opts = dict(max_steps=4, save_steps=2, eval_split=None, **FAST)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        fine_tune(tiny(toy), toy, out=out, callbacks=[_Interrupt()], **opts)
    ckpt = out / "checkpoints" / "checkpoint-2"
    from safetensors.torch import load_file, save_file

    weights = load_file(ckpt / "model.safetensors")
    weights.pop(next(k for k in weights if "layers.1." in k))
    save_file(weights, ckpt / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(C2SError, match="missing"):
        fine_tune(tiny(toy), toy, out=out, resume="latest", **opts)


def test_interrupted_run_resumes(toy, tmp_path):
    out = tmp_path / "run"
    opts = dict(max_steps=4, save_steps=2, eval_split=None, **FAST)
    with pytest.raises(KeyboardInterrupt):
        fine_tune(tiny(toy), toy, out=out, callbacks=[_Interrupt()], **opts)
    assert not (out / CONFIG_FILE).exists() and (out / "checkpoints" / "checkpoint-2").is_dir()
    with pytest.raises(OutputExistsError, match="resume"):
        fine_tune(tiny(toy), toy, out=out, **opts)
    # A finished model is not a checkpoint to resume from.
    finished = tmp_path / "finished"
    tiny(toy).save(finished)
    with pytest.raises(C2SError, match="not a training checkpoint"):
        fine_tune(tiny(toy), toy, out=out, resume=str(finished), **opts)
    # Another architecture cannot resume this run.
    with pytest.raises(C2SError, match="different architecture"):
        fine_tune(tiny(toy, architecture="llama"), toy, out=out, resume="latest", **opts)
    r = fine_tune(tiny(toy), toy, out=out, resume="latest", **opts)
    assert r.steps == 4 and (out / CONFIG_FILE).exists()
    trained = [h["step"] for h in r.log_history if "loss" in h]
    assert trained[-1] == 4
    assert C2SModel.from_pretrained(out, device="cpu").config.training["steps"] == 4
    with pytest.raises(OutputExistsError, match="overwrite"):
        fine_tune(tiny(toy), toy, out=out, **opts)
    with pytest.raises(C2SError, match="finished run"):
        fine_tune(tiny(toy), toy, out=out, resume="latest", **opts)
    r = fine_tune(tiny(toy), toy, out=out, overwrite=True, **{**opts, "max_steps": 2})
    assert json.loads((out / CONFIG_FILE).read_text())["training"]["steps"] == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".c2s-tmp")] == []


def test_bad_training_input(toy, tmp_path):
    m = tiny(toy)
    with pytest.raises(C2SError, match=r"known tasks: .*cell_type_prediction"):
        fine_tune(m, toy, tasks=["cell_typing"])
    with pytest.raises(C2SError, match="Unknown training option"):
        fine_tune(m, toy, epochz=2)
    with pytest.raises(C2SError, match="WEIGHT"):
        fine_tune(m, toy, tasks=["cell_type_prediction:x"])
    with pytest.raises(C2SError, match=r"'validation' split .* no cells"):
        fine_tune(m, toy, train_split="validation")
    with pytest.raises(C2SError, match="needs \\['tissue'\\]"):
        fine_tune(m, toy, tasks=["tissue_prediction"])


def test_missing_labels_are_dropped_and_counted(pbmc, tmp_path):
    pbmc = pbmc[:60].copy()
    pbmc.obs["cell_type"] = pbmc.obs["cell_type"].astype(object)
    pbmc.obs.iloc[:7, pbmc.obs.columns.get_loc("cell_type")] = np.nan
    keys = ["cell_type", "organism"]
    ds = c2s.io.convert(pbmc, tmp_path / "d", obs_keys=keys, split_fractions=(1, 0, 0))
    with pytest.warns(UserWarning, match="7 of 60 cells have no value"):
        r = fine_tune(tiny(ds), ds, max_steps=1, eval_split=None, **FAST)
    assert r.n_train_examples == 53


def test_dataset_without_usable_cells_is_refused(pbmc, tmp_path):
    pbmc = pbmc[:20].copy()
    pbmc.obs["cell_type"] = pd.Series([None] * 20, index=pbmc.obs_names, dtype=object)
    keys = ["cell_type", "organism"]
    ds = c2s.io.convert(pbmc, tmp_path / "d", obs_keys=keys, split_fractions=(1, 0, 0))
    with (
        pytest.warns(UserWarning, match="20 of 20"),
        pytest.raises(C2SError, match="No cell has a value"),
    ):
        fine_tune(tiny(ds), ds, max_steps=1, **FAST)


def test_validation_loss_per_task(pbmc_dataset):
    m = tiny(pbmc_dataset)
    r = fine_tune(
        m,
        pbmc_dataset,
        tasks=["cell_type_prediction", "cell_type_generation"],
        max_steps=4,
        eval_steps=2,
        **FAST,
    )
    per = r.eval_loss_per_task
    assert set(per) == {"cell_type_prediction", "cell_type_generation"}
    assert min(per.values()) <= r.eval_loss <= max(per.values())
    curves = r.eval_curves()
    assert curves["cell_type_prediction"][0] == [2, 4]
    assert r.loss_curve()[2] == [2, 4]


@pytest.mark.parametrize("power", [0.0, 0.5, 1.0])
def test_class_balance_repeats_rarer_labels(pbmc_dataset, power):
    m = C2SModel.from_scratch(pbmc_dataset, max_length=256, device="cpu")
    cfg = TrainConfig(n_genes=10, class_balance=power)
    items, _, _ = build_examples(
        pbmc_dataset, m.tokenizer, cfg, split="train", max_length=256, limit=None, weighted=True
    )
    obs = pbmc_dataset.obs(["cell_type"]).iloc[pbmc_dataset.split_indices()["train"]]
    labels = obs["cell_type"].astype(str).to_numpy()
    got = pd.Series([labels[it["cells"][0]] for it in items]).value_counts()
    have = pd.Series(labels).value_counts()
    want = have * (have.max() / have) ** power
    np.testing.assert_allclose(got[want.index].to_numpy(), want.to_numpy(), atol=1)


def test_defaults_depend_on_where_the_model_starts(toy, tmp_path):
    """Unset options take the measured from-scratch recipe for a new model and fine-tuning
    values for a loaded one; options given are kept."""
    fresh = tiny(toy)
    assert fresh.from_scratch
    fine_tune(fresh, toy, max_steps=1, eval_split=None, n_genes=8)
    opts = fresh.config.training["options"]
    assert (opts["learning_rate"], opts["epochs"], opts["batch_size"]) == (2e-3, 10.0, 16)
    assert opts["class_balance"] == 0.5 and opts["warmup"] == 0.05
    fresh.save(tmp_path / "m")
    loaded = C2SModel.from_pretrained(tmp_path / "m", device="cpu")
    assert not loaded.from_scratch
    fine_tune(loaded, toy, max_steps=1, eval_split=None, n_genes=8, batch_size=4)
    opts = loaded.config.training["options"]
    assert (opts["learning_rate"], opts["epochs"], opts["batch_size"]) == (5e-5, 1.0, 4)
    assert opts["class_balance"] == 0.0


def test_validation_calibration_reads_validation_cells_only(pbmc_dataset, monkeypatch):
    """Training fits the per-label biases on the validation split: every cell sentence the
    calibration reads is a validation cell, never a test cell, and the result is stored."""
    from c2s.io import C2SDataset

    idx = pbmc_dataset.split_indices()
    read: list[np.ndarray] = []
    real = C2SDataset.sentences

    def spy(self, *a, **kw):
        read.append(np.asarray(kw.get("rows") if kw.get("rows") is not None else [-1]))
        return real(self, *a, **kw)

    m = tiny(pbmc_dataset)
    orig = trainer_mod.fit_label_calibration

    def watched(*a, **kw):
        monkeypatch.setattr(C2SDataset, "sentences", spy)
        try:
            return orig(*a, **kw)
        finally:
            monkeypatch.setattr(C2SDataset, "sentences", real)

    monkeypatch.setattr(trainer_mod, "fit_label_calibration", watched)
    fine_tune(m, pbmc_dataset, tasks=["cell_type_prediction"], max_steps=2, probe=False, **FAST)
    rows = np.concatenate(read)
    assert len(read) >= 1 and len(rows) == len(idx["validation"])
    assert set(rows) <= set(idx["validation"]) and not set(rows) & set(idx["test"])
    cal = m.config.calibration
    assert cal["task"] == "cell_type_prediction" and cal["split"] == "validation"
    assert cal["labels"] == m.config.labels["cell_type"] and len(cal["bias"]) == len(cal["labels"])
    assert cal["n_cells"] == len(idx["validation"])
    m.config.calibration = None
    fine_tune(m, pbmc_dataset, tasks=["cell_type_prediction"], max_steps=1, eval_split=None,
              probe=False, **FAST)  # fmt: skip
    assert m.config.calibration is None  # no validation cells, no calibration


def test_label_heads_build_each_cells_prompt_once(pbmc_dataset, monkeypatch):
    """Selection (keep_best="label_accuracy"), the linear probe and the validation
    calibration read one set of label prompts: no cell's prompt is built twice, and the
    calibration scores the very prompts selection scored, for the cells both read."""
    from c2s.train import _heads

    built, scored = [], []
    build_cells, build_scorer = _heads.LabelPrompts._build, _heads.LabelAccuracy.build.__func__

    def spy_cells(self, rows):
        built.extend(rows)
        return build_cells(self, rows)

    def spy_scorer(cls, prompts, labels, batch_size, limit=None):
        scorer = build_scorer(cls, prompts, labels, batch_size, limit)
        scored.append(list(scorer.prompts))
        return scorer

    monkeypatch.setattr(_heads.LabelPrompts, "_build", spy_cells)
    monkeypatch.setattr(_heads.LabelAccuracy, "build", classmethod(spy_scorer))
    m = tiny(pbmc_dataset)
    opts = {**FAST, "max_steps": 2, "eval_steps": 1}
    fine_tune(m, pbmc_dataset, tasks=["cell_type_prediction"], keep_best="label_accuracy", **opts)
    idx = pbmc_dataset.split_indices()
    assert len(built) == len(set(built))  # each cell once
    assert set(built) == {*idx["train"].tolist(), *idx["validation"].tolist()}
    selection, calibration = scored
    assert len(selection) == FAST["max_eval_examples"]
    assert len(calibration) == len(idx["validation"]) and set(selection) <= set(calibration)
    assert m.config.probe is not None and m.config.calibration is not None


def test_label_prompts_built_in_parts_equal_those_built_at_once(pbmc_dataset):
    """The shared prompts do not depend on what was asked for before: a draw of a few
    validation cells, then all of them, gives what one fresh build of all of them gives
    (prompts shortened to fit the context included)."""
    from c2s.train._heads import LabelPrompts

    m = tiny(pbmc_dataset)
    cfg = TrainConfig(tasks=["cell_type_prediction"], n_genes=40)
    shared = LabelPrompts(m, pbmc_dataset, cfg, 64)
    _, few, _, _ = shared.of("validation", 10)
    task, prompts, spans, y = shared.of("validation")
    fresh = LabelPrompts(m, pbmc_dataset, cfg, 64).of("validation")
    assert task is fresh[0] and prompts == fresh[1] and spans == fresh[2]
    assert y.tolist() == fresh[3].tolist() and len(few) == 10 and set(few) <= set(prompts)
    assert any("40 gene" not in p for p in prompts)  # some lost genes to fit 64 tokens
    for p, (a, b) in zip(prompts, spans, strict=True):
        assert len(m.tokenizer(p)["input_ids"]) <= 64 and p[a:b] and p[b] == "."


def test_old_keyword_names_warn_and_work(toy, tmp_path):
    """fine_tune's output_dir= and data=, build_examples' ds=: a FutureWarning naming the new
    keyword, the same run; both names at once are refused."""
    m = tiny(toy)
    opts = {**FAST, "max_steps": 1, "eval_split": None, "probe": False}
    with pytest.warns(FutureWarning, match="output_dir= is now called out="):
        r = fine_tune(m, toy, output_dir=tmp_path / "r", **opts)
    assert r.output_dir == str(tmp_path / "r") and (tmp_path / "r" / CONFIG_FILE).exists()
    with pytest.warns(FutureWarning, match="data= is now called dataset="):
        assert fine_tune(tiny(toy), data=toy, **opts).steps == 1
    with pytest.raises(C2SError, match="Give out= only"):
        fine_tune(m, toy, out=tmp_path / "a", output_dir=tmp_path / "b", **opts)
    kw = {"split": "train", "max_length": 128, "limit": None, "weighted": False}
    cfg = TrainConfig(n_genes=8)
    with pytest.warns(FutureWarning, match="ds= is now called dataset="):
        old, _, _ = build_examples(ds=toy, tokenizer=m.tokenizer, cfg=cfg, **kw)
    new, _, _ = build_examples(toy, m.tokenizer, cfg, **kw)
    assert [e["input_ids"] for e in old] == [e["input_ids"] for e in new]


def test_augmented_copies_are_rendered_with_other_tie_orders(pbmc_dataset):
    m = C2SModel.from_scratch(pbmc_dataset, max_length=256, device="cpu")
    kw = {"split": "train", "max_length": 256, "limit": None, "weighted": True}
    base, _, _ = build_examples(pbmc_dataset, m.tokenizer, TrainConfig(n_genes=20), **kw)
    cfg = TrainConfig(n_genes=20, augment=2, gene_dropout=0.1)
    aug, _, _ = build_examples(pbmc_dataset, m.tokenizer, cfg, **kw)
    assert len(aug) == 3 * len(base)
    n = len(base)
    assert [it["input_ids"] for it in aug[:n]] == [it["input_ids"] for it in base]
    copies = [aug[n:2 * n], aug[2 * n:]]  # fmt: skip
    for copy in copies:
        assert [it["cells"] for it in copy] == [it["cells"] for it in base]
        changed = sum(a["input_ids"] != b["input_ids"] for a, b in zip(copy, base, strict=True))
        assert changed > n // 2
        assert all(a["labels"][-3:] == b["labels"][-3:] for a, b in zip(copy, base, strict=True))
    assert copies[0][0]["input_ids"] != copies[1][0]["input_ids"]
    with pytest.raises(C2SError, match="gene_dropout applies"):
        TrainConfig(gene_dropout=0.1)


@pytest.mark.parametrize("keep", ["label_accuracy", "loss"])
def test_keep_best_restores_the_best_evaluation(pbmc_dataset, keep, tmp_path):
    """With keep_best, the weights at the end are exactly those of the best checkpoint (every
    layer, GPT-NeoX's renamed output layer too), and scoring the validation cells again gives
    the best evaluation's number."""
    from c2s.train._heads import LabelAccuracy, LabelPrompts

    m = tiny(pbmc_dataset)
    opts = {**FAST, "learning_rate": 3e-3, "max_steps": 8, "eval_steps": 2, "probe": False}
    r = fine_tune(
        m, pbmc_dataset, tasks=["cell_type_prediction"], keep_best=keep, out=tmp_path / "r",
        save_total_limit=10, **opts,
    )  # fmt: skip
    state = json.loads(
        sorted((tmp_path / "r" / "checkpoints").glob("*/trainer_state.json"))[-1].read_text()
    )
    best_ckpt = AutoModelForCausalLM.from_pretrained(state["best_model_checkpoint"])
    for (name, a), b in zip(m.model.named_parameters(), best_ckpt.parameters(), strict=True):
        assert torch.equal(a, b), name
    key = {"label_accuracy": "eval_label_accuracy", "loss": "c2s_eval_loss"}[keep]
    seen = [h[key] for h in r.log_history if key in h]
    assert len(seen) == 5  # 4 evaluations, and one of the weights kept at the end
    best = max(seen[:4]) if keep == "label_accuracy" else min(seen[:4])
    assert seen[-1] == pytest.approx(best, rel=1e-5)
    cfg = TrainConfig(**{**opts, "tasks": ["cell_type_prediction"]})
    m.model.eval()
    if keep == "label_accuracy":
        prompts = LabelPrompts(m, pbmc_dataset, cfg, 128)
        score = LabelAccuracy.build(prompts, m.config.labels["cell_type"], 8)
        assert score() == pytest.approx(best)
    else:
        assert r.eval_loss == pytest.approx(best, rel=1e-5)
    with pytest.raises(C2SError, match="multiple of eval_steps"):
        TrainConfig(keep_best="loss", eval_steps=3, save_steps=4)


def test_deterministic_runs_repeat_exactly_and_leave_torch_as_it_was(toy):
    weights = []
    for _ in range(2):
        m = tiny(toy)
        fine_tune(m, toy, max_steps=3, eval_split=None, deterministic=True, probe=False, **FAST)
        weights.append(torch.cat([p.detach().flatten() for p in m.model.parameters()]))
    assert torch.equal(weights[0], weights[1])
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("lora", [False, True])
def test_low_precision_models_train_fp32_master_weights(toy, lora):
    """A model loaded in bfloat16: the weights being trained are float32 during training
    (bf16 autocast runs the forward pass), frozen ones stay bfloat16; a full fine-tune
    returns to bfloat16 at the end, LoRA adapters stay float32."""
    m = tiny(toy)
    m.model.to(torch.bfloat16)
    seen = {}

    class Watch(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kw):
            seen["args_bf16"] = args.bf16
            for p in model.parameters():
                seen.setdefault("trained" if p.requires_grad else "frozen", set()).add(p.dtype)

    opts = {**FAST, "max_steps": 2, "eval_split": None, "probe": False}
    fine_tune(m, toy, lora=lora, callbacks=[Watch()], **opts)
    assert seen["args_bf16"] and seen["trained"] == {torch.float32}
    dtypes = {n: p.dtype for n, p in m.model.named_parameters()}
    if lora:
        assert seen["frozen"] == {torch.bfloat16}
        assert {d for n, d in dtypes.items() if "lora_" in n} == {torch.float32}
        assert {d for n, d in dtypes.items() if "lora_" not in n} == {torch.bfloat16}
    else:
        assert "frozen" not in seen and set(dtypes.values()) == {torch.bfloat16}
