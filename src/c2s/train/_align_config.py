"""Options of an alignment run: one dataclass for :func:`c2s.train.align`, the ``c2s align``
flags and ``--config run.yaml``."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from c2s._errors import C2SError
from c2s.io import SPLITS
from c2s.train._config import OptionsFile, _help, accept_old_names, check_field_types


@accept_old_names
@dataclass
class AlignConfig(OptionsFile):
    """Options of :func:`c2s.train.align` and ``c2s align`` (one flag per field)."""

    _what = "alignment"

    task: str = field(
        default="cell_type_prediction", metadata=_help("task whose prompts the policy answers")
    )
    rewards: list[str] = field(
        default_factory=lambda: ["label"],
        metadata=_help(
            "rewards, each NAME[:WEIGHT][:KEY=VALUE,...] (label, gene_validity, "
            "expression_similarity, perturbation_program, text_similarity); in Python also "
            "functions (completions, **columns) -> list of floats",
            flags=("--reward",),
        ),
    )
    n_genes: int | None = field(
        default=None, metadata=_help("genes per cell sentence (default: the model's)")
    )
    split: str = field(default="train", metadata=_help("split whose cells make the prompts"))
    max_prompts: int | None = field(
        default=None, metadata=_help("use a seeded sample of this many prompts")
    )
    group_size: int = field(
        default=8, metadata=_help("completions sampled per prompt (GRPO's group)")
    )
    batch_size: int = field(
        default=16, metadata=_help("completions per step and device, a multiple of group_size")
    )
    kl: float = field(
        default=0.0, metadata=_help("KL penalty toward the starting model (TRL's beta)")
    )
    learning_rate: float = field(default=5e-5, metadata=_help("peak learning rate"))
    max_steps: int = field(default=100, metadata=_help("optimizer steps", old_names=("steps",)))
    temperature: float = field(default=1.0, metadata=_help("sampling temperature"))
    max_completion_length: int | None = field(
        default=None,
        metadata=_help("most tokens per completion (default: 16 for labels, n_genes + 4 cells)"),
    )
    lora: bool = field(default=False, metadata=_help("train LoRA adapters instead of all weights"))
    lora_r: int = field(default=8, metadata=_help("LoRA rank"))
    lora_alpha: int = field(default=16, metadata=_help("LoRA scaling"))
    lora_targets: list[str] | None = field(
        default=None, metadata=_help("LoRA: module names to adapt (default: the architecture's)")
    )
    merge: bool = field(default=False, metadata=_help("save LoRA adapters merged into the weights"))
    save_steps: int = field(default=50, metadata=_help("checkpoint every this many steps"))
    seed: int = field(default=0, metadata=_help("seed of the prompt sample, sampling and updates"))
    program: list[str] | None = field(
        default=None, metadata=_help("perturbation_program: the programme's genes")
    )
    organism: str | None = field(
        default=None, metadata=_help("organism for prompts when the data has no organism column")
    )
    context: list[str] | None = field(
        default=None,
        metadata=_help("perturbation task: obs columns a control shares with its perturbed cell"),
    )
    resume: str | None = field(
        default=None,
        metadata=_help("continue an interrupted run: 'latest' or a checkpoint directory"),
    )

    def __post_init__(self):
        check_field_types(self, skip=("rewards",))
        if isinstance(self.rewards, str | bytes) or not isinstance(self.rewards, list | tuple):
            raise C2SError(f"rewards must be a list, got {self.rewards!r}.")
        bad = [r for r in self.rewards if not (isinstance(r, str) or callable(r))]
        if bad or not self.rewards:
            raise C2SError(
                f"rewards must be a non-empty list of names (NAME[:WEIGHT]) or functions, got "
                f"{self.rewards!r}."
            )
        self.rewards = list(self.rewards)
        check_reward_names(self.rewards)
        if self.program is not None:  # --program HLA-A,HLA-B as well as --program HLA-A HLA-B
            self.program = [g.strip() for p in self.program for g in p.split(",") if g.strip()]
            if not self.program:
                raise C2SError("program names no genes.")
        at_least = {
            "n_genes": 1, "max_prompts": 1, "group_size": 2, "batch_size": 2, "max_steps": 1,
            "max_completion_length": 1, "lora_r": 1, "lora_alpha": 1, "save_steps": 1, "seed": 0,
        }  # fmt: skip
        for name, low in at_least.items():
            value = getattr(self, name)
            if value is not None and value < low:
                why = " (GRPO compares completions within a group)" if name == "group_size" else ""
                raise C2SError(f"{name} must be at least {low}, got {value}{why}.")
        if self.batch_size % self.group_size:
            raise C2SError(
                f"batch_size ({self.batch_size}) must be a multiple of group_size "
                f"({self.group_size}): each prompt's group is scored together."
            )
        for name in ("learning_rate", "temperature"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise C2SError(f"{name} must be a positive number, got {value}.")
        if not (math.isfinite(self.kl) and self.kl >= 0):
            raise C2SError(f"kl must be a non-negative number, got {self.kl}.")
        if self.split not in SPLITS:
            raise C2SError(f"split must be one of {', '.join(SPLITS)}, not {self.split!r}.")
        from c2s.prompts import get_task

        get_task(self.task)  # an unknown task says which exist

    def to_dict(self) -> dict:
        """The options as plain values (a reward function by its name)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["rewards"] = [r if isinstance(r, str) else _reward_name(r) for r in self.rewards]
        return d


def check_reward_names(rewards: list) -> None:
    """Every spec parses (unknown rewards and options, bad weights refused) and no reward
    is given twice: TRL logs each under its name, so two would share one curve."""
    from c2s.rewards import parse_spec

    names = [parse_spec(r)[0] if isinstance(r, str) else _reward_name(r) for r in rewards]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise C2SError(
            f"Reward(s) {twice} given more than once; give each reward once (raise its weight "
            "instead: label:2), and reward functions distinct __name__s."
        )


def _reward_name(fn) -> str:
    """A reward function's name in logs and options."""
    return getattr(fn, "__name__", "custom")
