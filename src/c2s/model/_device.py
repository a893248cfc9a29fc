"""Where and in what precision a model runs: the device (the local rank's GPU under
torchrun), the dtype, and what 4-bit loading needs."""

from __future__ import annotations

from c2s._errors import C2SError


def local_rank() -> int:
    """This process's rank on its machine under torchrun / accelerate launch (0 alone)."""
    import os

    try:
        return int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        return 0


def resolve_device(device: str | None = "auto"):
    """``"auto"``: CUDA when present (the GPU of this process's local rank under torchrun or
    accelerate launch, so that each rank has its own), else Apple MPS, else CPU. A bare
    ``"cuda"`` also means the local rank's GPU."""
    import torch

    if device in (None, "auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", local_rank() % torch.cuda.device_count())
    if device in (None, "auto"):
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise C2SError(f"device={device!r} was asked for but CUDA is not available here.")
    return dev


def resolve_dtype(dtype, device):
    """``"auto"``: bfloat16 on a GPU that supports it (else float16), float32 on CPU/MPS."""
    import torch

    if dtype in (None, "auto"):
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if isinstance(dtype, str):
        try:
            short = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
            dtype = short.get(dtype) or getattr(torch, dtype)
        except AttributeError:
            raise C2SError(
                f"Unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16."
            ) from None
    return dtype


def check_4bit(device) -> None:
    import importlib.util

    if device.type != "cuda":
        raise C2SError("4-bit loading (QLoRA) needs a CUDA GPU; on this machine use plain LoRA.")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise C2SError("4-bit loading (QLoRA) needs bitsandbytes: pip install 'c2s[gpu]'.")


__all__ = ["check_4bit", "local_rank", "resolve_device", "resolve_dtype"]
