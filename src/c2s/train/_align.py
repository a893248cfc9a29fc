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

from c2s._deprecate import renamed
from c2s._errors import C2SError
from c2s._logging import get_logger
from c2s._warn import warn_user
from c2s.train._align_config import AlignConfig
from c2s.train._align_data import alignment_prompts, gene_generation_kwargs
from c2s.train._callbacks import own_progress
from c2s.train._precision import autocast_flags, fp32_master_weights, low_precision
from c2s.train._resume import resume_point, resumed_step
from c2s.train._rundir import CHECKPOINTS, is_main_process, make_run_dir, run_dir, save_run

log = get_logger(__name__)


@dataclass
class AlignResult:
    """What an alignment run did: steps, time, throughput and TRL's log history (per logged
    step: ``reward``, ``rewards/<name>/mean``, ``kl``, ``completions/mean_length`` ...)."""

    output_dir: Path | None
    steps: int
    log_history: list = field(repr=False, default_factory=list)
    start_step: int = 0  # where a resumed run started

    def mean_reward(self, first: bool = False) -> float | None:
        """The weighted reward of the last (``first``: the first) logged step."""
        vals = [h["reward"] for h in self.log_history if "reward" in h]
        return (vals[0] if first else vals[-1]) if vals else None

    def rewards(self) -> dict[str, list[float]]:
        """Each reward function's mean per logged step."""
        out: dict[str, list[float]] = {}
        for h in self.log_history:
            for k, v in h.items():
                if k.startswith("rewards/") and k.endswith("/mean"):
                    out.setdefault(k[len("rewards/") : -len("/mean")], []).append(v)
        return out

    @property
    def seconds(self) -> float | None:
        """Wall time of the training loop (this call's part, when it resumed)."""
        return next((h["train_runtime"] for h in self.log_history if "train_runtime" in h), None)

    @property
    def tokens_per_second(self) -> float | None:
        """Prompt and completion tokens through the policy per second of this call."""
        tokens = [h["num_tokens"] for h in self.log_history if "num_tokens" in h]
        return tokens[-1] / self.seconds if tokens and self.seconds else None

    def to_dict(self) -> dict:
        first, last = self.mean_reward(first=True), self.mean_reward()
        trained = self.steps - self.start_step
        per_step = self.seconds / trained if self.seconds and trained else None
        return {
            "output_dir": str(self.output_dir),
            "steps": self.steps,
            "seconds": self.seconds,
            "seconds_per_step": per_step,
            "tokens_per_second": self.tokens_per_second,
            "first_reward": first,
            "last_reward": last,
            "rewards": {k: {"first": v[0], "last": v[-1]} for k, v in self.rewards().items()},
        }


def _model_genes(m) -> list[str]:
    genes = m.config.genes
    if not genes:
        raise C2SError(
            "The model's c2s_config.json lists no genes; gene rewards and decoding need them "
            "(train with c2s first, or set config.genes)."
        )
    return [str(g) for g in genes]


def _reward_functions(m, ds, cfg: AlignConfig, n_genes: int, columns) -> tuple[list, list]:
    from c2s.rewards import REWARDS, check, get, parse_spec

    funcs, weights = [], []
    if cfg.program:
        check_program(m, cfg.program, "--program")
    for spec in cfg.rewards:
        if callable(spec):
            funcs.append(spec)
            weights.append(1.0)
            continue
        name, weight, opts = parse_spec(spec)
        check([name], columns, program="program" in opts)  # unknown name, missing columns
        if "program" in opts:
            if cfg.program:
                raise C2SError(
                    f"The programme is given twice, by --program and in {spec!r}; give it once."
                )
            check_program(m, opts["program"], repr(spec))
        needs = REWARDS[name][2]
        if "genes" in needs:
            opts["genes"] = _model_genes(m)
            opts.setdefault("n_genes", n_genes)
        if "inverse" in needs:
            inv = ds.meta.get("inverse") or m.config.inverse
            if inv is None:
                raise C2SError(
                    f"Reward {name!r} compares expression: fit an inverse transform first "
                    "(c2s inverse fit DATASET)."
                )
            opts["inverse"] = inv
        fn = get(name, **opts)
        if fn is None:  # text similarity without its model: skipped, already warned
            continue
        funcs.append(fn)
        weights.append(weight)
    if not funcs:
        raise C2SError("No reward is left to train on.")
    return funcs, weights


def check_program(m, program, where: str) -> None:
    """A programme's genes must be genes of the model: one it does not know never appears in
    a completion or a cell, so it adds nothing (a warning names them; none known: refused)."""
    known = {g.upper() for g in _model_genes(m)}
    unknown = [g for g in program if str(g).upper() not in known]
    if len(unknown) == len(program):
        raise C2SError(
            f"None of the programme's genes in {where} ({', '.join(map(str, unknown[:10]))}) is "
            "a gene of the model; name genes of its vocabulary (genes in its c2s_config.json)."
        )
    if unknown:
        warn_user(
            f"The programme in {where} names {len(unknown)} gene(s) the model does not know "
            f"({', '.join(map(str, unknown[:10]))}); they add nothing to the reward.",
        )


def _grpo_config(GRPOConfig, work: Path, cfg: AlignConfig, max_len, weights, gen_kw, m, low):
    # bf16 / fp16 explicit: TRL turns bf16 autocast on by default, also for a float32 model
    return GRPOConfig(
        **autocast_flags(low, on_gpu=m.device.type == "cuda"),
        output_dir=str(work / CHECKPOINTS),
        per_device_train_batch_size=cfg.batch_size,
        num_generations=cfg.group_size,
        max_completion_length=max_len,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        beta=cfg.kl,
        temperature=cfg.temperature,
        reward_weights=weights,
        seed=cfg.seed,
        save_steps=cfg.save_steps,
        save_strategy="steps",
        logging_steps=1,
        report_to=[],
        generation_kwargs=gen_kw,
        use_cpu=m.device.type == "cpu",
        disable_tqdm=not is_main_process(),
    )


@renamed(output_dir="out")
def align(
    model,
    dataset,
    out: str | os.PathLike,
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
    fields (``steps=``, the old name of ``max_steps``, still works for one release, with a
    warning). Every option, reward and the columns it reads are checked before any training.

    Gene tasks sample only distinct genes the model knows (:func:`gene_generation_kwargs`)
    where the tokenizer has one token per gene. With ``lora`` only adapters train (the base
    weights stay as they are) and the run saves the adapter, or, with ``merge``, a plain
    model. The result in ``out`` (``output_dir=``, its old name, still works for one
    release, with a warning) is a C2S model directory like any other, with
    ``train_log.json`` (mean reward per function, KL, completion length per logged step),
    ``alignment.png`` (the same as curves, when matplotlib is installed) and ``checkpoints/``.
    """
    from trl import GRPOConfig, GRPOTrainer

    from c2s.io import as_dataset
    from c2s.model import as_model
    from c2s.prompts import get_task

    given = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)} if config else {}
    cfg = AlignConfig.from_dict({**given, **AlignConfig.upgrade_names(options)})
    m = as_model(model)
    ds = as_dataset(dataset)
    _check_lora(m, cfg)
    task = get_task(cfg.task)
    n_genes = int(cfg.n_genes or m.config.n_genes or 200)
    data = _prompts(ds, cfg, n_genes)
    funcs, weights = _reward_functions(m, ds, cfg, n_genes, data.column_names)
    gen_kw = _gene_constraints(m, task)
    max_len = cfg.max_completion_length or _completion_length(task, n_genes, gen_kw)
    out = Path(out)
    peft_config = _new_adapters(m, cfg)
    low = low_precision(m.model)  # bf16 / fp16 weights
    inputs = [ds.path, m.name_or_path]
    with (
        run_dir(out, overwrite=overwrite, resume=cfg.resume, inputs=inputs) as work,
        warnings.catch_warnings(),
    ):
        # TRL 1.16 still uses transformers' (gradient|is_gradient)_checkpointing names, which
        # transformers 5 deprecates; not ours to fix, and harmless until transformers 6
        warnings.filterwarnings("ignore", ".*checkpointing.*", FutureWarning)
        make_run_dir(work)
        # trained weights in float32 (a LoRA base stays as loaded; new adapters are float32)
        if not (cfg.lora and not m.is_peft):
            fp32_master_weights(m.model)
        ckpt = resume_point(work / CHECKPOINTS, cfg.resume)
        args = _grpo_config(GRPOConfig, work, cfg, max_len, weights, gen_kw, m, low)
        trainer = GRPOTrainer(
            model=m.model,
            reward_funcs=funcs,
            args=args,
            train_dataset=data,
            processing_class=m.tokenizer,
            peft_config=peft_config,
            callbacks=callbacks,
        )
        start = _train(m, trainer, ckpt, low if not cfg.lora else None)
        if is_main_process():
            _save(m, work, cfg, trainer.state.log_history)
    state = trainer.state
    return AlignResult(out, int(state.global_step), list(state.log_history), start_step=start)


def _prompts(ds, cfg: AlignConfig, n_genes: int):
    """The prompts of ``cfg.task`` with the columns the rewards read."""
    return alignment_prompts(
        ds,
        cfg.task,
        n_genes=n_genes,
        split=cfg.split,
        limit=cfg.max_prompts,
        seed=cfg.seed,
        organism=cfg.organism,
        context=cfg.context,
        program=cfg.program,
    )


def _gene_constraints(m, task) -> dict | None:
    """Generation settings that keep a gene task's completions to distinct genes of the
    model (None for other tasks, and, warned, for a tokenizer that splits genes)."""
    if task.answer != "cells":
        return None
    gen_kw = gene_generation_kwargs(m.tokenizer, _model_genes(m))
    if gen_kw is None:
        warn_user(
            "This tokenizer splits genes into pieces, so decoding cannot be held to valid "
            "genes during alignment; add the gene_validity reward.",
        )
    return gen_kw


def _completion_length(task, n_genes: int, gen_kw: dict | None) -> int:
    """Tokens per completion when not given: a label's few, a constrained cell's genes and
    its end, else 4 per gene."""
    if task.answer == "cells" and gen_kw:
        return n_genes + 4
    return 16 if task.answer == "label" else 4 * n_genes


def _new_adapters(m, cfg: AlignConfig):
    """The peft ``LoraConfig`` of new adapters (``cfg.lora`` on a model without any), their
    targets checked; None otherwise."""
    if not cfg.lora or m.is_peft:
        return None
    from peft import LoraConfig

    from c2s.model import lora_targets

    targets = lora_targets(m.model, cfg.lora_targets)
    return LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, task_type="CAUSAL_LM", target_modules=targets
    )


def _train(m, trainer, ckpt: Path | None, low) -> int:
    """Run the GRPO trainer (from ``ckpt`` when it resumes) and take its model back (in the
    precision ``low`` it was loaded in, unless None); returns the step it started from."""
    own_progress(trainer, desc="aligning")
    m.model = trainer.model  # LoRA-wrapped by now
    start = resumed_step(m, ckpt)
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    m.model = trainer.model
    if low is not None:  # back to the precision it was loaded in
        m.model.to(low)
    if m.is_peft and m.name_or_path:
        m.model.peft_config["default"].base_model_name_or_path = m.name_or_path
    return start


def _save(m, work: Path, cfg: AlignConfig, history: list) -> None:
    """The finished run: ``alignment.png``, ``train_log.json`` (the options and TRL's log)
    and the model, with the alignment options in its config's training summary."""
    _plot(history, work / "alignment.png")
    m.config.training = {**(m.config.training or {}), "alignment": cfg.to_dict()}
    save_run(m, work, {"options": cfg.to_dict(), "log": history}, merge=cfg.merge)


def _check_lora(m, cfg: AlignConfig) -> None:
    """LoRA choices that would fail only after training are refused before it."""
    if m.is_peft and not cfg.lora:
        raise C2SError("This model carries LoRA adapters; align it with lora=True (--lora).")
    if m.is_peft:  # continue training the loaded adapter
        for name, p in m.model.named_parameters():
            p.requires_grad = "lora_" in name
    if cfg.lora and not cfg.merge and not m.is_peft and not m.name_or_path:
        raise C2SError(
            "The model was never saved, so a LoRA adapter alone could not be loaded again: "
            "save it first, or pass merge=True (--merge) to save the adapted weights."
        )


def _plot(history: list, path: Path) -> None:
    try:
        from c2s.pl import reward_curves, save_figure

        save_figure(reward_curves(history), path)
    except ImportError as e:  # matplotlib is an extra
        log.info("no %s: %s", path.name, e)
