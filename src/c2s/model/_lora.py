"""LoRA target modules: the architecture's defaults, or given names checked against the
model's linear layers."""

from __future__ import annotations

from collections.abc import Sequence

from c2s._errors import C2SError

# LoRA target modules per architecture (module names as they appear in the models).
LORA_TARGETS: dict[str, list[str]] = {
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gptj": ["q_proj", "k_proj", "v_proj", "out_proj", "fc_in", "fc_out"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
    "phi": ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"],
    "falcon": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
}
_LLAMA_LIKE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
for _arch in ("llama", "mistral", "mixtral", "gemma", "gemma2", "gemma3_text", "qwen2", "qwen3"):
    LORA_TARGETS[_arch] = _LLAMA_LIKE


def lora_targets(model, targets: Sequence[str] | None = None) -> list[str]:
    """LoRA target module names for ``model``: ``targets`` if given, else the architecture's.

    Every name must match a linear layer of the model, so a wrong name fails here, not by
    silently training nothing.
    """
    import torch

    model_type = getattr(model.config, "model_type", None)
    if targets is None:
        if model_type not in LORA_TARGETS:
            raise C2SError(
                f"No default LoRA targets for model type {model_type!r}; pass them with "
                "lora_targets / --lora-targets (names of its Linear modules)."
            )
        targets = LORA_TARGETS[model_type]
    targets = list(targets)
    linear = {
        name.rsplit(".", 1)[-1]
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) or type(m).__name__ == "Conv1D"
    }
    missing = [t for t in targets if t not in linear]
    if missing:
        raise C2SError(
            f"LoRA targets {missing} match no linear layer of this {model_type} model; its "
            f"linear layers are: {', '.join(sorted(linear))}."
        )
    return targets
