"""``align``: the reinforcement stage after supervised fine-tuning, Group Relative Policy
Optimization through TRL's ``GRPOTrainer`` with rewards that score biology
(:mod:`c2s.rewards`). Prompts come from the task registry, as in :func:`fine_tune`; the run
directory follows the same rules (refusals, ``resume``, checkpoints, the finished model with
``c2s_config.json`` moved in last)."""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from c2s._errors import C2SError
from c2s.train._align_data import alignment_prompts, gene_generation_kwargs
from c2s.train._rundir import (
    CHECKPOINTS,
    is_main_process,
    latest_checkpoint,
    make_run_dir,
    run_dir,
    save_into,
    write_json,
)


@dataclass
class AlignConfig:
    """Options of an alignment run (``c2s align --config run.yaml`` reads the same keys)."""

    task: str = "cell_type_prediction"
    rewards: list = field(default_factory=lambda: ["label"])  # "name[:weight][:k=v]" or callables
    n_genes: int | None = None  # genes per cell sentence (default: the model's)
    split: str = "train"
    max_prompts: int | None = None  # a seeded sample of the prompts
    group_size: int = 8  # completions per prompt (GRPO's group)
    batch_size: int = 16  # completions per step and device (a multiple of group_size)
    kl: float = 0.0  # KL coefficient (TRL's beta)
    learning_rate: float = 5e-5
    steps: int = 100
    temperature: float = 1.0
    max_completion_length: int | None = None  # default: 16 (labels), n_genes + 4 (cells)
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    save_steps: int = 50
    seed: int = 0
    program: list[str] | None = None  # perturbation_program's genes
    organism: str | None = None
    context: list[str] | None = None  # perturbation pairs: the controls' context columns
    resume: str | None = None  # "latest" or a checkpoint directory

    @classmethod
    def from_dict(cls, d: dict) -> AlignConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise C2SError(f"Unknown alignment option(s) {unknown}; known: {sorted(known)}.")
        return cls(**d)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["rewards"] = [r if isinstance(r, str) else getattr(r, "__name__", "custom")
                        for r in self.rewards]  # fmt: skip
        return d


@dataclass
class AlignResult:
    output_dir: Path | None
    steps: int
    log_history: list = field(repr=False, default_factory=list)

    def mean_reward(self, first: bool = False) -> float | None:
        vals = [h["reward"] for h in self.log_history if "reward" in h]
        return (vals[0] if first else vals[-1]) if vals else None


def _model_genes(m) -> list[str]:
    genes = m.config.genes
    if not genes:
        raise C2SError("The model's c2s_config.json lists no genes; gene rewards and decoding "
                       "need them (train with c2s first, or set config.genes).")  # fmt: skip
    return [str(g) for g in genes]


def _reward_functions(m, ds, cfg: AlignConfig, n_genes: int, columns) -> tuple[list, list]:
    from c2s.rewards import REWARDS, check, get, parse_spec

    funcs, weights = [], []
    for spec in cfg.rewards:
        if callable(spec):
            funcs.append(spec)
            weights.append(1.0)
            continue
        name, weight, opts = parse_spec(spec)
        check([name], columns, program="program" in opts)  # unknown name, missing columns
        needs = REWARDS[name][2]
        if "genes" in needs:
            opts.setdefault("genes", _model_genes(m))
            opts.setdefault("n_genes", n_genes)
        if "inverse" in needs:
            inv = ds.meta.get("inverse") or m.config.inverse
            if inv is None:
                raise C2SError(f"Reward {name!r} compares expression: fit an inverse transform "
                               "first (c2s inverse fit DATASET).")  # fmt: skip
            opts.setdefault("inverse", inv)
        fn = get(name, **opts)
        if fn is None:  # text similarity without its model: skipped, already warned
            continue
        funcs.append(fn)
        weights.append(weight)
    if not funcs:
        raise C2SError("No reward is left to train on.")
    return funcs, weights


def _grpo_config(GRPOConfig, work: Path, cfg: AlignConfig, max_len, weights, gen_kw, m):
    return GRPOConfig(
        output_dir=str(work / CHECKPOINTS), per_device_train_batch_size=cfg.batch_size,
        num_generations=cfg.group_size, max_completion_length=max_len, max_steps=cfg.steps,
        learning_rate=cfg.learning_rate, beta=cfg.kl, temperature=cfg.temperature,
        reward_weights=weights, seed=cfg.seed, save_steps=cfg.save_steps,
        save_strategy="steps", logging_steps=1, report_to=[], generation_kwargs=gen_kw,
        use_cpu=m.device.type == "cpu", disable_tqdm=not is_main_process(),
    )  # fmt: skip


def align(
    model,
    dataset,
    output_dir: str | os.PathLike,
    *,
    config: AlignConfig | None = None,
    overwrite: bool = False,
    callbacks: list | None = None,
    **options,
) -> AlignResult:
    """Align ``model`` (a :class:`~c2s.model.C2SModel` or a path) with GRPO on prompts of
    ``config.task`` from ``dataset``, scored by ``config.rewards`` (registry names with
    optional weight and options, ``"label"``, ``"gene_validity:0.5"``,
    ``"perturbation_program:1:method=pearson"``, or your own functions
    ``(completions, **columns) -> list[float]``). Keyword ``options`` override the config's
    fields. Every reward and the columns it reads are checked before any training.

    Gene tasks sample only distinct genes the model knows (:func:`gene_generation_kwargs`)
    where the tokenizer has one token per gene. The result in ``output_dir`` is a C2S model
    directory like any other, with ``train_log.json`` (mean reward per function, KL,
    completion length per logged step) and ``checkpoints/``.
    """
    from trl import GRPOConfig, GRPOTrainer

    from c2s.io import C2SDataset
    from c2s.model import C2SModel
    from c2s.prompts import get_task

    cfg = AlignConfig.from_dict({**(config.to_dict() if config else {}), **options})
    if config is not None:  # callables survive only through the object itself
        cfg.rewards = list(options.get("rewards", config.rewards))
    m = model if isinstance(model, C2SModel) else C2SModel.from_pretrained(model)
    ds = dataset if isinstance(dataset, C2SDataset) else C2SDataset(dataset)
    if cfg.batch_size % cfg.group_size:
        raise C2SError(f"batch_size ({cfg.batch_size}) must be a multiple of group_size "
                       f"({cfg.group_size}): each prompt's group is scored together.")  # fmt: skip
    task = get_task(cfg.task)
    n_genes = int(cfg.n_genes or m.config.n_genes or 200)
    data = alignment_prompts(
        ds, cfg.task, n_genes=n_genes, split=cfg.split, limit=cfg.max_prompts, seed=cfg.seed,
        organism=cfg.organism, context=cfg.context, program=cfg.program,
    )  # fmt: skip
    funcs, weights = _reward_functions(m, ds, cfg, n_genes, data.column_names)
    tok = m.tokenizer
    gen_kw = None
    if task.answer == "cells":
        gen_kw = gene_generation_kwargs(tok, _model_genes(m))
        if gen_kw is None:
            warnings.warn(
                "This tokenizer splits genes into pieces, so decoding cannot be held to valid "
                "genes during alignment; add the gene_validity reward.",
                stacklevel=2,
            )
    max_len = cfg.max_completion_length or (
        n_genes + 4 if task.answer == "cells" and gen_kw else 16 if task.answer == "label" else 4 * n_genes
    )  # fmt: skip
    out = Path(output_dir)
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, task_type="CAUSAL_LM",
                                 target_modules="all-linear")  # fmt: skip
    inputs = [ds.path, m.name_or_path]
    with (
        run_dir(out, overwrite=overwrite, resume=cfg.resume, inputs=inputs) as work,
        warnings.catch_warnings(),
    ):
        # TRL 1.16 still uses transformers' (gradient|is_gradient)_checkpointing names, which
        # transformers 5 deprecates; not ours to fix, and harmless until transformers 6
        warnings.filterwarnings("ignore", ".*checkpointing.*", FutureWarning)
        make_run_dir(work)
        ckpt = latest_checkpoint(work / CHECKPOINTS) if cfg.resume == "latest" else cfg.resume
        if cfg.resume and ckpt is None:
            raise C2SError(f"No checkpoint to resume under {work / CHECKPOINTS}.")
        args = _grpo_config(GRPOConfig, work, cfg, max_len, weights, gen_kw, m)
        trainer = GRPOTrainer(
            model=m.model, reward_funcs=funcs, args=args, train_dataset=data,
            processing_class=tok, peft_config=peft_config, callbacks=callbacks,
        )  # fmt: skip
        trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
        m.model = trainer.model
        if is_main_process():
            history = trainer.state.log_history
            write_json(work / "train_log.json", {"options": cfg.to_dict(), "log": history})
            m.config.training = {**(m.config.training or {}), "alignment": cfg.to_dict()}
            save_into(m, work, merge=cfg.lora)
    return AlignResult(out, int(trainer.state.global_step), list(trainer.state.log_history))
