"""Fine-tuning with the Hugging Face Trainer: tasks mixed by weight, the dataset's own split,
length-grouped batches, checkpoints and resume, LoRA, and DDP through Accelerate/torchrun.

A run directory holds ``checkpoints/``, ``split.json`` (the row indices used per split),
``train_log.json`` (the loss curve) and, when the run completes, the model (Hugging Face
files plus ``c2s_config.json``, written last: its presence marks a finished run).
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from c2s._deprecate import renamed
from c2s._errors import C2SError
from c2s._logging import get_logger, quiet_hf_progress
from c2s.model import C2SConfig, check_adapter_base
from c2s.train._callbacks import (
    collator_options,
    combine_eval_class,
    eval_key,
    own_progress,
    trainer_class,
)
from c2s.train._collate import CountingCollator
from c2s.train._config import TrainConfig, task_weights
from c2s.train._examples import build_examples, eval_sets, unk_warning
from c2s.train._heads import (
    LabelAccuracy,
    LabelPrompts,
    fit_label_calibration,
    fit_label_probe,
    selection_args,
)
from c2s.train._lora import apply_lora
from c2s.train._precision import autocast_flags, fp32_master_weights
from c2s.train._rank_data import launch, share_examples
from c2s.train._resume import resume_point, resumed_step
from c2s.train._rundir import (
    CHECKPOINTS,
    is_main_process,
    make_run_dir,
    run_dir,
    save_run,
    write_split,
)

log = get_logger(__name__)


@dataclass
class TrainResult:
    """What a run did: losses, sizes and speed."""

    steps: int = 0
    epochs: float = 0.0
    train_loss: float | None = None
    eval_loss: float | None = None  # over all validation answer tokens
    eval_loss_per_task: dict[str, float] = field(default_factory=dict)
    n_train_examples: int = 0
    n_eval_examples: int = 0
    n_shortened: int = 0
    n_dropped: int = 0
    seconds: float = 0.0
    tokens: int = 0  # non-padding tokens in this process's training batches (per rank under DDP)
    padded_fraction: float = 0.0
    trainable_parameters: int = 0
    total_parameters: int = 0
    log_history: list[dict] = field(default_factory=list)
    output_dir: str | None = None

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["tokens_per_second"] = self.tokens_per_second
        return d

    def loss_curve(self) -> tuple[list[int], list[float], list[int], list[float]]:
        """(steps, training losses, eval steps, eval losses) from the log history; with
        several tasks the eval loss is their token-weighted mean (see ``eval_curves``)."""
        tr = [(h["step"], h["loss"]) for h in self.log_history if "loss" in h]
        ev = [(h["step"], h["c2s_eval_loss"]) for h in self.log_history if "c2s_eval_loss" in h]
        return [s for s, _ in tr], [v for _, v in tr], [s for s, _ in ev], [v for _, v in ev]

    def eval_curves(self) -> dict[str, tuple[list[int], list[float]]]:
        """Validation loss per task: ``{task: (steps, losses)}``."""
        out: dict[str, tuple[list[int], list[float]]] = {}
        for h in self.log_history:
            for task in self.eval_loss_per_task:
                key = eval_key(task, len(self.eval_loss_per_task))
                if key in h:
                    out.setdefault(task, ([], []))
                    out[task][0].append(h["step"])
                    out[task][1].append(h[key])
        return out


@renamed(output_dir="out", data="dataset")
def fine_tune(
    model,
    dataset,
    config: TrainConfig | None = None,
    *,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    callbacks: list | None = None,
    **options,
) -> TrainResult:
    """Fine-tune ``model`` (a :class:`~c2s.model.C2SModel`) on a c2s dataset.

    Parameters
    ----------
    model
        The model; trained in place, and its ``config`` updated (tasks, labels seen, profile,
        n_genes, gene vocabulary, inverse model, training summary).
    dataset
        A :class:`~c2s.io.C2SDataset` or its path. Its split column decides training and
        evaluation cells; the rows used are saved to ``split.json``. (``data=``, its old
        name, still works for one release, with a warning.)
    config
        A :class:`TrainConfig`; keyword ``options`` override its fields
        (e.g. ``tasks=["cell_type_prediction", "cell_type_generation:0.5"], epochs=3``).
    out
        Run directory: checkpoints, logs, and the final model. ``None`` keeps checkpoints in
        a temporary directory and saves nothing (call ``model.save`` yourself).
        (``output_dir=``, its old name, still works for one release, with a warning.)
    overwrite
        Replace a finished run in ``out`` (kept aside until the new run completes).
    callbacks
        Extra ``transformers.TrainerCallback`` objects.

    Returns
    -------
    A :class:`TrainResult` with the loss curve, sizes and tokens/s.
    """
    import tempfile

    from c2s.io import as_dataset

    cfg = TrainConfig.from_dict({**(config.to_dict() if config else {}), **options})
    cfg = cfg.resolved(from_scratch=model.from_scratch)
    ds = as_dataset(dataset)
    if ds.n_cells == 0:
        raise C2SError(f"{ds.path} has no cells to train on.")
    max_length = _max_length(model, cfg)
    if out is None:
        with tempfile.TemporaryDirectory(prefix="c2s-train-") as tmp:
            return _run(model, ds, cfg, max_length, Path(tmp), None, callbacks, Path(tmp))
    out = Path(out)
    inputs = [ds.path, model.name_or_path]
    # (after the checks) the training examples' tokens, on the output's file system
    with (
        run_dir(out, overwrite=overwrite, resume=cfg.resume, inputs=inputs) as work,
        tempfile.TemporaryDirectory(
            prefix=f".{out.name}.examples-",
            dir=out.parent if out.parent.is_dir() else None,
            ignore_cleanup_errors=True,
        ) as spill,
    ):
        return _run(model, ds, cfg, max_length, work, out, callbacks, Path(spill))


def _max_length(model, cfg: TrainConfig) -> int:
    """The training context: ``cfg.max_length``, else the model's, at most 1024 tokens."""
    model_max = getattr(model.model.config, "max_position_embeddings", None) or 1024
    max_length = cfg.max_length or min(int(model_max), 1024)
    if max_length > model_max:
        raise C2SError(
            f"max_length {max_length} exceeds the model's context of {model_max} tokens."
        )
    return max_length


def _run(model, ds, cfg, max_length, run_dir, final_dir, callbacks, spill) -> TrainResult:
    """Train into ``run_dir``; save there unless ``final_dir`` is None (no output wanted).
    ``final_dir`` is where the run ends up (``run_dir`` itself, or the run it replaces).
    ``spill``: a directory for the training examples' tokens."""
    import torch

    t0 = time.perf_counter()
    quiet_hf_progress()
    train, evals, stats, labels = _examples(model, ds, cfg, max_length, spill)
    _adapters(model, cfg, save=final_dir is not None)
    resume_from, start_step = _start(model, ds, cfg, run_dir)
    low = fp32_master_weights(model.model)
    full_low = low is not None and not (cfg.lora or model.is_peft)
    deterministic = torch.are_deterministic_algorithms_enabled()  # restored after training
    args = _training_args(cfg, run_dir / CHECKPOINTS, len(train), bool(evals), low)
    trainer = _trainer(model, cfg, args, train, evals, callbacks)
    prompts = LabelPrompts(model, ds, cfg, max_length)  # each cell's built once, for every head
    if cfg.keep_best == "label_accuracy" and evals:
        trainer.c2s_label_accuracy = _selection(prompts, labels)
    own_progress(trainer)
    t_train = time.perf_counter()
    try:
        out = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    finally:  # full_determinism switches it on for the whole process; not ours to keep
        torch.use_deterministic_algorithms(deterministic)
    seconds = time.perf_counter() - t_train
    eval_loss, per_task = _kept_eval_loss(trainer, evals)
    if full_low:  # back to the precision it was loaded in, for inference and saving
        model.model.to(low)
    model.model.eval()
    collator = trainer.c2s_collator
    result = TrainResult(
        steps=int(trainer.state.global_step),
        epochs=float(trainer.state.epoch or 0.0),
        train_loss=whole_run_loss(trainer.state, out.training_loss, start_step),
        eval_loss=eval_loss,
        eval_loss_per_task=per_task,
        n_train_examples=len(train),
        n_eval_examples=len(evals) if evals else 0,
        n_shortened=stats.get("n_shortened", 0),
        n_dropped=stats.get("n_dropped", 0),
        seconds=seconds,
        tokens=collator.real,
        padded_fraction=collator.padded / max(1, collator.real + collator.padded),
        trainable_parameters=model.n_parameters(trainable=True),
        total_parameters=model.n_parameters(),
        log_history=list(trainer.state.log_history),
        output_dir=str(final_dir) if final_dir is not None else None,
    )
    update_config(model.config, ds, cfg, labels, stats, max_length, result)
    if trainer.is_world_process_zero():
        _fit_heads(model, cfg, prompts)
    if final_dir is not None and trainer.is_world_process_zero():
        save_run(model, run_dir, result.to_dict(), merge=cfg.merge)
    trainer.accelerator.wait_for_everyone()
    total = time.perf_counter() - t0
    log.info("Trained %d steps in %.1f s (%.2f s total).", result.steps, seconds, total)
    return result


def _examples(model, ds, cfg: TrainConfig, max_length: int, spill):
    """``(train, evals, stats, labels)``: the training examples (under torchrun each process
    encodes its own share of the cells, then they are shared out), their statistics and the
    labels seen, and the validation examples (None without an eval split)."""
    tok = model.tokenizer
    build = functools.partial(build_examples, ds, tok, cfg, max_length=max_length)
    rank, world = launch()
    train, stats, labels = build(
        split=cfg.train_split,
        limit=cfg.max_train_examples,
        weighted=True,
        part=(rank, world) if world > 1 else None,
        spill=spill,
    )
    unk_warning(train, tok)
    if world > 1:
        train, stats, labels = share_examples(train, stats, labels, rank, world)
    if not len(train):
        raise C2SError(
            f"The {cfg.train_split!r} split of {ds.path} has no cells; re-convert with a split "
            "(c2s convert ... creates one) or choose --train-split."
        )
    evals = None
    if cfg.eval_split:
        evals, _, _ = build(split=cfg.eval_split, limit=cfg.max_eval_examples, weighted=False)
        if not evals:
            log.warning("The %r split is empty: no evaluation loss.", cfg.eval_split)
    return train, evals, stats, labels


def _adapters(model, cfg: TrainConfig, *, save: bool) -> None:
    """LoRA adapters on the model for ``cfg.lora`` (their base must be loadable again when
    they are saved alone); a model with adapters trains only with ``cfg.lora``."""
    if cfg.lora:
        apply_lora(model, cfg)
        if save and not cfg.merge:
            check_adapter_base(model.model)
    elif model.is_peft:
        raise C2SError("This model carries LoRA adapters; train it with lora=True (--lora).")


def _start(model, ds, cfg: TrainConfig, run_dir: Path) -> tuple[Path | None, int]:
    """Make the run directory and write ``split.json`` (the main process); the checkpoint
    to resume from (None: a new run) and its step."""
    main = is_main_process()
    if main:
        make_run_dir(run_dir)
    resume_from = resume_point(run_dir / CHECKPOINTS, cfg.resume)
    start_step = resumed_step(model, resume_from)
    if main:
        write_split(run_dir / "split.json", ds, cfg)
    return resume_from, start_step


def _training_args(cfg: TrainConfig, ckpt_dir: Path, n_train: int, has_evals: bool, low):
    """The Trainer's arguments: evaluations and checkpoints every ``eval_steps`` (else each
    epoch, or once at ``max_steps``), autocast to ``low`` (the weights' original precision)."""
    import torch
    from transformers import TrainingArguments

    on_gpu = torch.cuda.is_available()
    world = launch()[1]
    per_epoch = max(1, -(-n_train // (cfg.batch_size * world)) // cfg.grad_accum)
    strategy = "steps" if cfg.eval_steps else "epoch"
    if cfg.max_steps > 0 and not cfg.eval_steps:
        strategy = "steps"
    eval_every = cfg.eval_steps or (cfg.max_steps if cfg.max_steps > 0 else per_epoch)
    sampling = "group_by_length" if cfg.sampling == "group_by_length" else "random"
    return TrainingArguments(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size or cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup,
        lr_scheduler_type=cfg.scheduler,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        eval_strategy=strategy if has_evals else "no",
        eval_steps=eval_every if strategy == "steps" else None,
        save_strategy=strategy,
        save_steps=(cfg.save_steps or eval_every) if strategy == "steps" else None,
        save_total_limit=cfg.save_total_limit,
        seed=cfg.seed,
        data_seed=cfg.seed,
        full_determinism=cfg.deterministic,
        train_sampling_strategy=sampling,
        remove_unused_columns=False,
        report_to="none",
        disable_tqdm=True,  # our own bar on stderr (see own_progress)
        **autocast_flags(low, on_gpu),
        use_cpu=not on_gpu,
        dataloader_num_workers=cfg.num_workers,
        **selection_args(cfg.keep_best, has_evals),
        ddp_find_unused_parameters=False,
        **({"activation_checkpointing": True} if cfg.gradient_checkpointing else {}),
    )


def _trainer(model, cfg: TrainConfig, args, train, evals, callbacks):
    """The Trainer over the examples, with the counting collator (``c2s_collator``, which
    tests and benchmarks inspect too) and the combined validation loss."""
    from transformers import Trainer

    collator = CountingCollator(model.tokenizer.pad_token_id, **collator_options(model.model))
    names = [name for name, _ in task_weights(cfg.tasks)]
    eval_data, eval_tokens = eval_sets(evals, names)
    combine = combine_eval_class()(names, eval_tokens)
    trainer = trainer_class(Trainer)(
        model=model.model,
        args=args,
        train_dataset=train,
        eval_dataset=eval_data,
        data_collator=collator,
        processing_class=model.tokenizer,
        callbacks=[combine, *(callbacks or [])],
    )
    trainer.c2s_collator = collator
    return trainer


def _selection(prompts: LabelPrompts, labels: dict) -> LabelAccuracy:
    """The scorer of ``keep_best="label_accuracy"`` over the labels this run trains."""
    cfg, task = prompts.cfg, prompts.task
    scorer = LabelAccuracy.build(
        prompts, labels.get(task.label, []) if task else [], cfg.eval_batch_size or cfg.batch_size
    )
    if scorer is None:
        raise C2SError(
            "keep_best='label_accuracy' needs a single-cell label task and labelled "
            f"{cfg.eval_split!r} cells; use keep_best='loss' or 'last'."
        )
    return scorer


def _kept_eval_loss(trainer, evals) -> tuple[float | None, dict]:
    """The validation loss of the weights kept, and per task (evaluated again when the best
    ones were restored, or when the last evaluation was not at the last step)."""
    if not evals:
        return None, {}
    last = [h for h in trainer.state.log_history if "c2s_eval_loss" in h]
    if (
        not last
        or last[-1].get("step") != trainer.state.global_step
        or trainer.args.load_best_model_at_end
    ):
        trainer.evaluate()
        last = [h for h in trainer.state.log_history if "c2s_eval_loss" in h]
    return float(last[-1]["c2s_eval_loss"]), dict(last[-1]["c2s_eval_per_task"])


def _fit_heads(model, cfg: TrainConfig, prompts: LabelPrompts) -> None:
    """After training (the main process): the linear probe and the validation calibration,
    into the model's config (left as they were when not asked for)."""
    batch_size = cfg.eval_batch_size or cfg.batch_size
    if cfg.probe:
        probe = fit_label_probe(prompts, batch_size)
        if probe is not None:
            model.config.probe = probe
    if cfg.calibrate and cfg.eval_split:
        task = prompts.task
        labels = model.config.labels.get(task.label, []) if task else []
        model.config.calibration = fit_label_calibration(prompts, labels, batch_size)


def whole_run_loss(state, session_loss: float, start: int) -> float:
    """The mean training loss over every step of the run. A Trainer resumed at step
    ``start`` averages only the steps it ran itself; the steps before the checkpoint come
    from its logged losses (each the mean over the steps since the previous log)."""
    if start <= 0:
        return float(session_loss)
    done = state.global_step - start
    total, covered, prev = 0.0, 0, 0
    for h in state.log_history:
        if "loss" in h and prev < h["step"] <= start:
            total += h["loss"] * (h["step"] - prev)
            covered += h["step"] - prev
            prev = h["step"]
    if covered + done <= 0:
        return float(session_loss)
    return float((total + session_loss * done) / (covered + done))


def update_config(
    c: C2SConfig, ds, cfg: TrainConfig, labels: dict, stats: dict, max_length: int, result
) -> None:
    """What the model learnt, into its config: tasks, labels and perturbations seen, prompt
    settings, organism, gene vocabulary, inverse model and the training summary.
    ``labels`` and ``stats`` are those of the training examples."""
    perturbations, organisms = stats.get("perturbations"), stats.get("organisms", [])
    # trained on perturbations before c2s recorded them: which ones it saw is unknown
    unknown = c.perturbations is None and "perturbation_prediction" in c.tasks
    if perturbations is not None and not unknown:
        c.perturbations = sorted({*(c.perturbations or []), *perturbations})
    c.profile = cfg.profile
    c.n_genes = cfg.n_genes
    c.max_length = max_length
    for name, _ in task_weights(cfg.tasks):
        if name not in c.tasks:
            c.tasks.append(name)
    for col, values in labels.items():
        c.add_labels(col, values)
    if cfg.organism:
        c.organism = cfg.organism
    elif len(organisms) == 1:
        c.organism = organisms[0]
    if c.genes is None:
        c.set_genes(ds.vocab.display_names.tolist())
    if ds.meta.get("inverse"):
        c.inverse = ds.meta["inverse"]
    c.training = {
        "dataset": str(ds.path),
        "options": cfg.to_dict(),
        "steps": result.steps,
        "train_loss": result.train_loss,
        "eval_loss": result.eval_loss,
        "eval_loss_per_task": result.eval_loss_per_task,
        "n_train_examples": result.n_train_examples,
    }
