"""Resuming a run (training or alignment): the checkpoint it goes on from, read whole before
the Trainer restores it (a damaged or foreign file is refused with its name, before the
Trainer is half way into restoring it) and checked against the model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from c2s._errors import C2SError
from c2s.train._rundir import latest_checkpoint

STATE = "trainer_state.json"
# What the Trainer loads with torch.load when it resumes (training_args.bin it never loads);
# random-number states hold numpy arrays, which it allows for them alone.
TORCH_FILES = {"optimizer.pt": False, "scheduler.pt": False, "scaler.pt": False,
               "pytorch_model.bin": False}  # fmt: skip
_FIX = "Resume from another checkpoint-N of the run, or start it again with --overwrite."


def resume_point(ckpt_dir: Path, resume: str | None) -> Path | None:
    """The checkpoint a run resumes from: None for a new run, the latest ``checkpoint-N`` of
    ``ckpt_dir`` for ``"latest"``, else the directory ``resume`` names (refused when there is
    none)."""
    if not resume:
        return None
    ckpt = latest_checkpoint(ckpt_dir) if resume == "latest" else Path(resume)
    if ckpt is None or not ckpt.is_dir():
        raise C2SError(f"No checkpoint to resume from in {ckpt_dir} ({resume!r}).")
    return ckpt


def resumed_step(model, ckpt: Path | None) -> int:
    """The step the run goes on from (0 for a new run), once the checkpoint is read whole
    (:func:`check_checkpoint`) and found to fit the model (:func:`check_resume`)."""
    if ckpt is None:
        return 0
    step = int(check_checkpoint(ckpt).get("global_step", 0))
    check_resume(model, ckpt)
    return step


def check_checkpoint(ckpt: Path) -> dict:
    """Refuse a checkpoint whose trainer state, configs or torch files would stop the resume
    with a traceback; return the trainer state (``global_step``, ``log_history`` ...)."""
    from c2s.model import check_torch_file

    ckpt = Path(ckpt)
    if not (ckpt / STATE).is_file():  # not a checkpoint at all: check_resume says so
        return {}
    state = _trainer_state(ckpt / STATE)
    for name in ("config.json", "adapter_config.json"):
        if (ckpt / name).exists():
            _json_object(ckpt / name)
    files = [(ckpt / n, numpy) for n, numpy in TORCH_FILES.items()]
    files += [(p, True) for p in sorted(ckpt.glob("rng_state*.pth"))]
    for path, numpy in files:
        if path.is_file():
            check_torch_file(path, numpy=numpy, fix=_FIX)
    for path in sorted(ckpt.glob("*.safetensors")):
        _safetensors_header(path)
    return state


def check_resume(model, ckpt: Path) -> None:
    """Refuse what is not a training checkpoint (a finished model, say), and a checkpoint
    whose architecture or adapter differs from the model's."""
    mine = model.model
    if not (ckpt / "trainer_state.json").is_file():
        raise C2SError(
            f"{ckpt} is not a training checkpoint (no trainer_state.json): resume takes "
            "'latest' or a checkpoints/checkpoint-N directory of an interrupted run."
        )
    if (ckpt / "adapter_config.json").exists():
        if not hasattr(mine, "peft_config"):
            raise C2SError(
                f"{ckpt} holds LoRA adapter weights, but this run trains all weights; resume with "
                "the same --lora options."
            )
        theirs = json.loads((ckpt / "adapter_config.json").read_text())
        cur = mine.peft_config["default"]
        if theirs.get("r") != cur.r or set(theirs.get("target_modules") or []) != set(
            cur.target_modules
        ):
            raise C2SError(
                f"{ckpt} holds LoRA adapters of rank {theirs.get('r')} on "
                f"{theirs.get('target_modules')}, not rank {cur.r} on {sorted(cur.target_modules)}."
            )
        return
    cfg_path = ckpt / "config.json"
    if not cfg_path.exists():
        raise C2SError(f"{ckpt} is not a training checkpoint (no config.json).")
    theirs = json.loads(cfg_path.read_text())
    if hasattr(mine, "peft_config"):
        raise C2SError(f"{ckpt} holds full weights, but this run trains LoRA adapters.")
    ours = mine.config.to_dict()
    keys = ("model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads")
    diff = [k for k in keys if k in theirs and k in ours and theirs[k] != ours[k]]
    if diff:
        detail = ", ".join(f"{k} {theirs[k]} vs {ours[k]}" for k in diff)
        raise C2SError(
            f"Cannot resume from {ckpt}: it is a different architecture ({detail}; checkpoint vs "
            "model). Resume with the model the run started from."
        )


def _json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise C2SError(f"{path} is damaged ({' '.join(str(e).split())}). {_FIX}") from e
    if not isinstance(data, dict):
        raise C2SError(
            f"{path} holds a JSON {type(data).__name__}, not an object: it is damaged. {_FIX}"
        )
    return data


def _trainer_state(path: Path) -> dict:
    """The Trainer's state file, with the shape the Trainer reads it in."""
    from transformers import TrainerState

    data = _json_object(path)
    known = {f.name for f in dataclasses.fields(TrainerState)}
    wrong = []
    if set(data) - known:
        wrong.append(f"unknown keys {sorted(set(data) - known)}")
    step = data.get("global_step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        wrong.append(f"global_step {step!r} is not a step number")
    for key in ("epoch", "max_steps", "total_flos", "num_train_epochs"):
        v = data.get(key, 0)
        if isinstance(v, bool) or not isinstance(v, int | float):
            wrong.append(f"{key} {v!r} is not a number")
    history = data.get("log_history") or []
    if not (isinstance(history, list) and all(isinstance(h, dict) for h in history)):
        wrong.append("log_history is not a list of records")
    callbacks = data.get("stateful_callbacks") or {}
    if not (
        isinstance(callbacks, dict) and all(isinstance(v, dict | list) for v in callbacks.values())
    ):
        wrong.append("stateful_callbacks is not a mapping of callback states")
    if wrong:
        raise C2SError(f"{path} is damaged: {'; '.join(wrong)}. {_FIX}")
    return data


def _safetensors_header(path: Path) -> None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except (SafetensorError, OSError, ValueError) as e:
        raise C2SError(f"{path} is damaged ({' '.join(str(e).split())[:200]}). {_FIX}") from e
