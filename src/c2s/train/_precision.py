"""Mixed precision for training: the weights being trained are kept in float32 (the
optimizer's updates would round away in bfloat16, and the fp16 grad scaler refuses fp16
parameters), while the forward pass runs in the low precision under autocast."""

from __future__ import annotations

from c2s._logging import get_logger

log = get_logger(__name__)


def low_precision(model):
    """The bfloat16 / float16 dtype of ``model``'s floating-point weights; None when they are
    float32."""
    import torch

    low = (torch.bfloat16, torch.float16)
    return next((p.dtype for p in model.parameters() if p.dtype in low), None)


def fp32_master_weights(model):
    """Cast every trainable low-precision parameter of ``model`` to float32, in place.

    Returns the model's low precision (None for a float32 model): the dtype to autocast to
    and, for a full fine-tune, to return to afterwards. Frozen weights (a LoRA base) stay as
    they are; peft may have made its adapters float32 already.
    """
    import torch

    had = low_precision(model)
    for p in model.parameters():
        if p.requires_grad and p.dtype in (torch.bfloat16, torch.float16):
            p.data = p.data.float()
    if had is not None:
        log.info("Trainable weights kept in float32; the forward pass autocasts to %s.", had)
    return had


def autocast_flags(low, on_gpu: bool) -> dict:
    """TrainingArguments' ``bf16`` / ``fp16`` for the weights' original precision (fp16
    autocast needs CUDA; on CPU a float16 model trains in float32)."""
    import torch

    return {
        "bf16": low == torch.bfloat16,
        "fp16": on_gpu and low == torch.float16,
    }


__all__ = ["autocast_flags", "fp32_master_weights", "low_precision"]
