"""LoRA adapters for training (peft), on the architecture's default targets or given ones."""

from __future__ import annotations

from c2s._logging import peft_wrapping
from c2s.train._config import TrainConfig


def apply_lora(c2s_model, cfg: TrainConfig) -> None:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from c2s.model import lora_targets

    if c2s_model.is_peft:  # continue training the loaded adapter
        for name, p in c2s_model.model.named_parameters():
            p.requires_grad = "lora_" in name
        return
    model = c2s_model.model
    targets = lora_targets(model, cfg.lora_targets)
    if getattr(model, "is_loaded_in_4bit", False):
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=cfg.gradient_checkpointing
        )
    lcfg = LoraConfig(
        task_type="CAUSAL_LM",
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
    )
    base_name = c2s_model.name_or_path
    with peft_wrapping():
        c2s_model.model = get_peft_model(model, lcfg)
    if base_name:
        c2s_model.model.peft_config["default"].base_model_name_or_path = base_name
