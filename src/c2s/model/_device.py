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
        if _mps():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise C2SError(
            f"Unknown device {device!r}; use {', '.join(available_devices())}."
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise C2SError(f"device={device!r} was asked for but CUDA is not available here.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise C2SError(
                f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA "
                f"device(s); use {', '.join(available_devices())}."
            )
    elif dev.type == "mps" and not _mps():
        raise C2SError(f"device={device!r} was asked for but Apple MPS is not available here.")
    elif dev.type not in ("cpu", "mps"):
        backend = getattr(torch, dev.type, None)  # torch.xpu and the like
        if not (hasattr(backend, "is_available") and backend.is_available()):
            raise C2SError(
                f"device={device!r} is not available here; use {', '.join(available_devices())}."
            )
    return dev


def _mps() -> bool:
    import torch

    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def available_devices() -> list[str]:
    """The device names ``resolve_device`` accepts on this machine (for messages)."""
    import torch

    out = ["auto", "cpu"]
    if torch.cuda.is_available():
        out += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    if _mps():
        out.append("mps")
    if len(out) == 2:
        out[-1] += " (no CUDA or MPS device here)"
    return out


# the weights' precisions c2s loads models in, and their short names
DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16",
          "fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # fmt: skip


def check_dtype(dtype) -> str | None:
    """The dtype's name (``"auto"`` or None stay as they are); anything but auto, float32,
    bfloat16 and float16 (or a torch dtype of those) is an error naming them."""
    if dtype is None or dtype == "auto":
        return dtype
    name = dtype if isinstance(dtype, str) else str(dtype).removeprefix("torch.")
    if name not in DTYPES:
        raise C2SError(
            f"Unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16 "
            "(or fp32, bf16, fp16)."
        )
    return DTYPES[name]


def resolve_dtype(dtype, device):
    """``"auto"``: bfloat16 on a GPU that supports it (else float16), float32 on CPU/MPS."""
    import torch

    name = check_dtype(dtype)
    if name in (None, "auto"):
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, name)


def check_4bit(device) -> None:
    import importlib.util

    if device.type != "cuda":
        raise C2SError("4-bit loading (QLoRA) needs a CUDA GPU; on this machine use plain LoRA.")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise C2SError("4-bit loading (QLoRA) needs bitsandbytes: pip install 'c2s[gpu]'.")


__all__ = [
    "available_devices",
    "check_4bit",
    "check_dtype",
    "local_rank",
    "resolve_device",
    "resolve_dtype",
]
