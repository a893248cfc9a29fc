"""Training options: one dataclass for the Python API, the CLI flags and ``--config run.yaml``."""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from c2s._deprecate import renamed, warn_renamed
from c2s._errors import C2SError
from c2s.io import SPLITS

# Defaults of the options left unset, by where the model starts. From scratch: the best
# recipe on PBMC's validation cells over 5 seeds (benchmarks/bench_science.py, "balanced").
FROM_SCRATCH = {
    "epochs": 10.0, "batch_size": 16, "learning_rate": 2e-3, "warmup": 0.05,
    "class_balance": 0.5,
}  # fmt: skip
FINE_TUNING = {
    "epochs": 1.0, "batch_size": 8, "learning_rate": 5e-5, "warmup": 0.0, "class_balance": 0.0,
}  # fmt: skip
SCHEDULERS = (
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
    "constant_with_warmup", "inverse_sqrt", "cosine_with_min_lr", "warmup_stable_decay",
)  # fmt: skip


def _help(text: str, **kw) -> dict:
    return {"help": text, **kw}


class OptionsFile:
    """``from_yaml`` / ``from_dict`` for an options dataclass whose ``_what`` names its kind
    of options in messages. A field renamed lists its old names in its ``old_names``
    metadata: they are read as the new one for a release, with a ``FutureWarning``."""

    _what = "options"

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides):
        """Options from a YAML file (keys are field names; ``-`` or ``_`` both work)."""
        data = {**cls.upgrade_names(read_yaml(path)), **cls.upgrade_names(overrides)}
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "options"):
        return config_from_dict(cls, data, source=source, what=cls._what)

    @classmethod
    def upgrade_names(cls, data: dict, *, source: str = "options") -> dict:
        """``data`` with the fields' old names replaced by their current ones (each warned
        about); both names at once are refused. Apply it to each source of options before
        merging them, so that a later source's new name overrides an earlier one's old
        name."""
        clean = {str(k).replace("-", "_"): v for k, v in data.items()}
        for old, new in old_names(cls).items():
            if old in clean:
                if new in clean:
                    raise C2SError(f"Give {new} only in {source} ({old} is its old name).")
                warn_renamed(old, new)
                clean[new] = clean.pop(old)
        return clean


def old_names(cls) -> dict[str, str]:
    """The old names of an options dataclass's renamed fields: ``{old: new}``."""
    return {old: f.name for f in dataclasses.fields(cls) for old in f.metadata.get("old_names", ())}


def accept_old_names(cls):
    """Class decorator (above ``@dataclass``): the options dataclass ``cls`` also takes its
    fields' old names as keywords, and reads them as attributes (read-only), both warned
    about (:func:`c2s._deprecate.renamed`)."""
    if old_names(cls):
        cls.__init__ = renamed(**old_names(cls))(cls.__init__)
    for old, new in old_names(cls).items():
        setattr(cls, old, _old_attribute(cls.__name__, old, new))
    return cls


def _old_attribute(owner: str, old: str, new: str) -> property:
    """A read-only attribute under a field's old name: warns, naming the new one, and returns
    the field's value."""

    def get(self):
        warn_renamed(f"{owner}.{old}", f"{owner}.{new}")
        return getattr(self, new)

    return property(get, doc=f"Deprecated: the old name of :attr:`{new}`.")


@dataclass
class TrainConfig(OptionsFile):
    """Options of :func:`c2s.train.fine_tune` and ``c2s train`` (one flag per field)."""

    _what = "training"

    tasks: list[str] = field(
        default_factory=lambda: ["cell_type_prediction"],
        metadata=_help(
            "tasks to train on, each NAME or NAME:WEIGHT; a weight is how many times each of the "
            "task's examples is used per epoch (0.5: a seeded half, 2: twice)"
        ),
    )
    profile: str = field(
        default="compat", metadata=_help("prompt profile: compat (released formats) or paraphrase")
    )
    n_genes: int = field(default=200, metadata=_help("genes per cell sentence in prompts"))
    max_length: int | None = field(
        default=None,
        metadata=_help("context length in tokens (default: the model's, at most 1024)"),
    )
    loss_on_response_only: bool = field(
        default=True, metadata=_help("train on the response only (prompt labels -100)")
    )
    organism: str | None = field(
        default=None, metadata=_help("organism for prompts when the data has no organism column")
    )
    group_by: list[str] | None = field(
        default=None, metadata=_help("multi-cell tasks: obs columns that form groups")
    )
    min_cells: int = field(default=5, metadata=_help("multi-cell tasks: fewest cells per prompt"))
    max_cells: int = field(default=20, metadata=_help("multi-cell tasks: most cells per prompt"))
    perturbation_key: str = field(
        default="perturbation", metadata=_help("perturbation task: obs column of the perturbation")
    )
    control_value: str = field(
        default="control", metadata=_help("perturbation task: the control cells' value")
    )
    context: list[str] | None = field(
        default=None,
        metadata=_help(
            "perturbation task: obs columns a control shares with its perturbed cell (its "
            "context: cell line, donor, condition; default cell_type)"
        ),
    )
    epochs: float | None = field(
        default=None,
        metadata=_help("passes over the training examples (10 from scratch, 1 fine-tuning)"),
    )
    max_steps: int = field(
        default=-1,
        metadata=_help("stop after this many optimizer steps (overrides epochs when > 0)"),
    )
    batch_size: int | None = field(
        default=None,
        metadata=_help("examples per device per step (16 from scratch, 8 fine-tuning)"),
    )
    eval_batch_size: int | None = field(
        default=None, metadata=_help("examples per device in evaluation (default: batch_size)")
    )
    grad_accum: int = field(default=1, metadata=_help("gradient accumulation steps"))
    learning_rate: float | None = field(
        default=None, metadata=_help("peak learning rate (2e-3 from scratch, 5e-5 fine-tuning)")
    )
    weight_decay: float = field(default=0.0, metadata=_help("AdamW weight decay"))
    warmup: float | None = field(
        default=None,
        metadata=_help(
            "warmup: steps (>= 1) or a fraction of all steps (< 1) (0.05 from scratch, 0 "
            "fine-tuning)"
        ),
    )
    scheduler: str = field(
        default="cosine",
        metadata=_help("learning-rate schedule (a transformers SchedulerType)", choices=SCHEDULERS),
    )
    logging_steps: int = field(default=10, metadata=_help("log the training loss every N steps"))
    eval_steps: int | None = field(
        default=None, metadata=_help("evaluate every N steps (default: at the end of each epoch)")
    )
    save_steps: int | None = field(
        default=None, metadata=_help("checkpoint every N steps (default: each epoch)")
    )
    save_total_limit: int = field(default=2, metadata=_help("checkpoints to keep"))
    max_train_examples: int | None = field(
        default=None, metadata=_help("use at most this many training examples (seeded)")
    )
    max_eval_examples: int | None = field(
        default=500, metadata=_help("evaluate on at most this many examples (seeded)")
    )
    train_split: str = field(default="train", metadata=_help("dataset split to train on"))
    eval_split: str | None = field(
        default="validation", metadata=_help("dataset split for the evaluation loss ('' for none)")
    )
    deterministic: bool = field(
        default=False,
        metadata=_help(
            "deterministic kernels where torch has them (transformers' full_determinism); "
            "the same machine then gives the same model, other CPUs or GPUs may still differ"
        ),
    )
    keep_best: str = field(
        default="last",
        metadata=_help(
            "the weights kept at the end: last, or the evaluation's best by validation loss "
            "or by label_accuracy (label scoring on validation cells, first label task)",
            choices=("last", "loss", "label_accuracy"),
        ),
    )
    sampling: str = field(
        default="group_by_length",
        metadata=_help(
            "batch order: group_by_length (little padding) or random",
            choices=("group_by_length", "random"),
        ),
    )
    seed: int = field(
        default=0, metadata=_help("seed of prompts, example order and initialization")
    )
    lora: bool = field(default=False, metadata=_help("train LoRA adapters instead of all weights"))
    lora_r: int = field(default=8, metadata=_help("LoRA rank"))
    lora_alpha: int = field(default=16, metadata=_help("LoRA alpha"))
    lora_dropout: float = field(default=0.05, metadata=_help("LoRA dropout"))
    lora_targets: list[str] | None = field(
        default=None, metadata=_help("module names to adapt (default: chosen per architecture)")
    )
    merge: bool = field(default=False, metadata=_help("save LoRA adapters merged into the weights"))
    gradient_checkpointing: bool = field(
        default=False, metadata=_help("recompute activations to save memory")
    )
    num_workers: int = field(default=0, metadata=_help("data loader worker processes"))
    class_balance: float | None = field(
        default=None,
        metadata=_help(
            "label tasks: repeat rarer labels' examples, weight (largest count / count) ** X "
            "(0: as they are, 0.5: square-root balance, 1: every label equally often; 0.5 "
            "from scratch, 0 fine-tuning)"
        ),
    )
    augment: int = field(
        default=0,
        metadata=_help(
            "extra copies of the training cells' examples, each with tied genes in a new "
            "seeded order (and gene_dropout applied); needs a dataset with stored values"
        ),
    )
    gene_dropout: float = field(
        default=0.0,
        metadata=_help("augmented copies: leave out each gene with this probability"),
    )
    probe: bool = field(
        default=True,
        metadata=_help(
            "after training, fit a linear probe on the model's embeddings of the training "
            "cells for the first single-cell label task (predict mode 'probe')"
        ),
    )
    calibrate: bool = field(
        default=True,
        metadata=_help(
            "after training, fit per-label biases for label scoring on the validation cells "
            "(predict calibration 'validation')"
        ),
    )
    resume: str | None = field(
        default=None,
        metadata=_help("continue an interrupted run: 'latest' or a checkpoint directory"),
    )

    def __post_init__(self):
        # Every option is checked here, before any file is touched: types first (a YAML file
        # can hold anything), then ranges.
        check_field_types(self)
        if self.eval_split == "":
            self.eval_split = None
        at_least = {
            "n_genes": 1, "batch_size": 1, "grad_accum": 1, "min_cells": 1, "lora_r": 1,
            "lora_alpha": 1, "logging_steps": 1, "save_total_limit": 1, "num_workers": 0,
            "max_length": 8, "eval_batch_size": 1, "eval_steps": 1, "save_steps": 1,
            "max_train_examples": 1, "max_eval_examples": 1, "seed": 0, "augment": 0,
        }  # fmt: skip
        for name, low in at_least.items():
            value = getattr(self, name)
            if value is not None and value < low:
                raise C2SError(f"{name} must be at least {low}, got {value}.")
        if self.max_cells < self.min_cells:
            raise C2SError(f"max_cells ({self.max_cells}) is below min_cells ({self.min_cells}).")
        if self.epochs is not None and not (math.isfinite(self.epochs) and self.epochs > 0):
            raise C2SError(f"epochs must be a positive number, got {self.epochs}.")
        if self.max_steps == 0 or self.max_steps < -1:
            raise C2SError(
                f"max_steps must be positive (or -1: train for epochs), got {self.max_steps}."
            )
        if self.learning_rate is not None and not (
            math.isfinite(self.learning_rate) and self.learning_rate > 0
        ):
            raise C2SError(f"learning_rate must be a positive number, got {self.learning_rate}.")
        for name in ("weight_decay", "warmup"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise C2SError(f"{name} must be a non-negative number, got {value}.")
        cb = self.class_balance
        if cb is not None and not (math.isfinite(cb) and 0 <= cb <= 1):
            raise C2SError(f"class_balance must lie in [0, 1], got {self.class_balance}.")
        if not 0 <= self.gene_dropout < 1:
            raise C2SError(f"gene_dropout must lie in [0, 1), got {self.gene_dropout}.")
        if self.gene_dropout and not self.augment:
            raise C2SError("gene_dropout applies to augmented copies: give augment= 1 or more.")
        if not 0 <= self.lora_dropout < 1:
            raise C2SError(f"lora_dropout must lie in [0, 1), got {self.lora_dropout}.")
        choices = {f.name: f.metadata.get("choices") for f in dataclasses.fields(self)}
        for name in ("scheduler", "sampling", "keep_best"):
            if getattr(self, name) not in choices[name]:
                value = getattr(self, name)
                raise C2SError(f"{name} must be one of {', '.join(choices[name])}, not {value!r}.")
        if self.train_split not in SPLITS or self.eval_split not in (*SPLITS, None):
            raise C2SError(
                f"train_split and eval_split must be one of {', '.join(SPLITS)} "
                f"(eval_split may be empty), not {self.train_split!r} / {self.eval_split!r}."
            )
        task_weights(self.tasks)
        steps = (self.save_steps or 0, self.eval_steps or 0)
        if self.keep_best != "last" and all(steps) and steps[0] % steps[1]:
            raise C2SError(
                f"keep_best={self.keep_best!r} needs save_steps ({self.save_steps}) to be a "
                f"multiple of eval_steps ({self.eval_steps})."
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def resolved(self, *, from_scratch: bool) -> TrainConfig:
        """A copy with every unset option (None) given its default: the measured recipe for a
        model trained from scratch (BENCHMARKS.md, science section), fine-tuning values for a
        pretrained one."""
        defaults = FROM_SCRATCH if from_scratch else FINE_TUNING
        return dataclasses.replace(
            self, **{k: v for k, v in defaults.items() if getattr(self, k) is None}
        )


def config_from_dict(cls, data: dict, *, source: str, what: str):
    """``cls(**data)`` for an options dataclass (an :class:`OptionsFile`): ``-`` in keys read
    as ``_``, old names as the new ones (warned), unknown keys refused with the known ones, a
    lone string given to a list option taken as a list."""
    names = {f.name for f in dataclasses.fields(cls)}
    clean = cls.upgrade_names(data, source=source)  # ``-`` read as ``_`` too
    unknown = sorted(set(clean) - names)
    if unknown:
        raise C2SError(
            f"Unknown {what} option(s) {unknown} in {source}; known: {', '.join(sorted(names))}."
        )
    hints = typing.get_type_hints(cls)
    for name, value in clean.items():
        if isinstance(value, str) and "list" in str(hints[name]):
            clean[name] = [value]
    return cls(**clean)


def check_field_types(cfg, skip: tuple[str, ...] = ()) -> None:
    """Each field of the dataclass ``cfg`` holds a value of its annotated type (ints are
    accepted for floats); fields in ``skip`` are checked by their owner."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        if f.name in skip:
            continue
        value = getattr(cfg, f.name)
        hint = hints[f.name]
        union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        allowed = typing.get_args(hint) if union else (hint,)
        if value is None and type(None) in allowed:
            continue
        ok = False
        for tp in allowed:
            origin = typing.get_origin(tp) or tp
            if origin is list:
                ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            elif tp is float:
                ok = isinstance(value, int | float) and not isinstance(value, bool)
            elif tp is int:
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif tp is not type(None):
                ok = isinstance(value, tp)
            if ok:
                break
        if not ok:
            want = " or ".join(
                "a list of strings" if typing.get_origin(t) is list else t.__name__ for t in allowed
            )
            raise C2SError(f"{f.name} must be {want}, got {value!r}.")


def read_yaml(path: str | os.PathLike) -> dict:
    """A YAML file of ``option: value`` pairs (``-`` in keys read as ``_``)."""
    import yaml

    try:
        data = yaml.load(Path(path).read_text(), Loader=_yaml_loader()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise C2SError(f"Cannot read the config file {path}: {e}") from e
    if not isinstance(data, dict):
        raise C2SError(f"{path} must hold a mapping of option: value.")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _yaml_loader():
    """PyYAML's safe loader, also reading ``1e-3`` (no dot) as a number, as YAML 1.2 does;
    YAML 1.1 reads it as a string, a surprise in a learning-rate line."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    number = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", number, list("-+0123456789"))
    return Loader


def task_weights(tasks: list[str]) -> list[tuple[str, float]]:
    """``["a", "b:0.5"]`` -> ``[("a", 1.0), ("b", 0.5)]`` (task names checked)."""
    from c2s.prompts import get_task

    if not tasks:
        raise C2SError("Give at least one task.")
    out = []
    for spec in tasks:
        name, _, w = str(spec).partition(":")
        try:
            weight = float(w) if w else 1.0
        except ValueError:
            raise C2SError(
                f"Bad task weight in {spec!r}; write NAME:WEIGHT, e.g. {name}:0.5."
            ) from None
        if weight <= 0:
            raise C2SError(f"Task weight must be positive in {spec!r}.")
        get_task(name)
        out.append((name, weight))
    return out
