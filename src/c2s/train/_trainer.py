"""Fine-tuning with the Hugging Face Trainer: tasks mixed by weight, the dataset's own split,
length-grouped batches, checkpoints and resume, LoRA, and DDP through Accelerate/torchrun.

A run directory holds ``checkpoints/``, ``split.json`` (the row indices used per split),
``train_log.json`` (the loss curve) and, when the run completes, the model (Hugging Face
files plus ``c2s_config.json``, written last: its presence marks a finished run).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from c2s._atomic import TMP_PREFIX, _tmp_sibling
from c2s._errors import C2SError, OutputExistsError
from c2s._logging import get_logger, quiet_hf_progress
from c2s.model._config import CONFIG_FILE, C2SConfig
from c2s.model._model import check_adapter_base
from c2s.train._config import TrainConfig, task_weights
from c2s.train._encode import IGNORE, PromptCollator, encode_examples

log = get_logger(__name__)

CHECKPOINTS = "checkpoints"


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
                key = _eval_key(task, len(self.eval_loss_per_task))
                if key in h:
                    out.setdefault(task, ([], []))
                    out[task][0].append(h["step"])
                    out[task][1].append(h[key])
        return out


class ExampleSet:
    """Encoded examples as a map-style dataset (lists of token ids per example)."""

    def __init__(self, items: list[dict]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


class CountingCollator(PromptCollator):
    """:class:`PromptCollator` that also counts real and padded positions."""

    def __init__(self, pad_token_id: int, **kw):
        super().__init__(pad_token_id, **kw)
        self.real = 0
        self.padded = 0

    def __call__(self, features):
        batch = super().__call__(features)
        real = int(batch["attention_mask"].sum())
        self.real += real
        self.padded += batch["attention_mask"].numel() - real
        return batch


# -- data -------------------------------------------------------------------------------------
def _renderer(task: str, cfg: TrainConfig, seed_offset: int = 0):
    from c2s.prompts import Renderer

    return Renderer(
        task,
        profile=cfg.profile,
        n_genes=cfg.n_genes,
        seed=cfg.seed + seed_offset,
        constants={"organism": cfg.organism} if cfg.organism else None,
        group_by=cfg.group_by,
        min_cells=cfg.min_cells,
        max_cells=cfg.max_cells,
        perturbation_key=cfg.perturbation_key,
        control_value=cfg.control_value,
    )


def _needed_columns(ds, renderers) -> list[str]:
    cols: set[str] = set()
    for r in renderers:
        cols |= r.task.columns(r.profile)
        if r.task.label:
            cols.add(r.task.label)
        cols |= set(r.group_by or [])
        if r.task.kind == "pair":
            cols |= {r.perturbation_key, *r.context_keys}
    return [c for c in ds.obs_columns if c in cols]


def build_examples(
    ds,
    tokenizer,
    cfg: TrainConfig,
    *,
    split: str,
    max_length: int,
    limit: int | None,
    weighted: bool,
) -> tuple[list[dict], dict, dict]:
    """Encode every task's examples over ``split`` of ``ds``; mix them by weight.

    Returns (examples, stats, labels seen per column).
    """
    rows = ds.split_indices()[split]
    if len(rows) == 0:
        return [], {}, {}
    renderers = [(_renderer(t, cfg), w) for t, w in task_weights(cfg.tasks)]
    cs = ds.sentences(
        rows=rows,
        top_k=cfg.n_genes,
        values=False,
        obs_columns=_needed_columns(ds, [r for r, _ in renderers]),
    )
    rng = np.random.default_rng([cfg.seed, 7, len(split)])
    out: list[dict] = []
    stats: dict = {"n_shortened": 0, "n_dropped": 0}
    if "organism" in cs.obs.columns:
        stats["organisms"] = sorted(cs.obs["organism"].dropna().astype(str).unique())
    labels: dict[str, set] = {}
    for ti, (renderer, weight) in enumerate(renderers):
        items, st = encode_examples(
            renderer,
            cs,
            tokenizer,
            max_length=max_length,
            loss_on_response_only=cfg.loss_on_response_only,
        )
        stats["n_shortened"] += st.n_shortened
        stats["n_dropped"] += st.n_dropped
        col = renderer.task.label
        if col and col in cs.obs.columns:
            labels.setdefault(col, set()).update(cs.obs[col].dropna().astype(str).unique())
        for it in items:
            it["task"] = ti
        if weighted and weight != 1.0:
            whole, frac = int(weight), weight - int(weight)
            extra = rng.choice(len(items), size=round(frac * len(items)), replace=False)
            items = items * whole + [items[i] for i in np.sort(extra)]
        out += items
    if limit is not None and len(out) > limit:
        keep = np.sort(rng.choice(len(out), size=limit, replace=False))
        out = [out[i] for i in keep]
    return out, stats, {k: sorted(v) for k, v in labels.items()}


def _unk_warning(examples: list[dict], tokenizer) -> None:
    unk = tokenizer.unk_token_id
    if unk is None or not examples:
        return
    n_unk = sum(sum(1 for t in ex["input_ids"] if t == unk) for ex in examples)
    n = sum(len(ex["input_ids"]) for ex in examples)
    if n_unk:
        import warnings

        warnings.warn(
            f"{n_unk} of {n} training tokens ({n_unk / n:.2%}) are unknown to the tokenizer "
            "(<unk>): the data has genes or words the model's vocabulary lacks. Build the model "
            "from this dataset (C2SModel.from_scratch(dataset)) to cover its genes.",
            stacklevel=3,
        )


# -- run directory ----------------------------------------------------------------------------
def check_run_dir(out: str | os.PathLike, *, overwrite: bool, resume: str | None) -> None:
    """Refuse a run directory that would lose work: a finished run without ``overwrite``, an
    interrupted run without ``resume`` or ``overwrite``, a resume with nothing to resume."""
    out = Path(out)
    if not out.exists():
        if resume:
            raise C2SError(f"Nothing to resume: {out} does not exist.")
        return
    finished = (out / CONFIG_FILE).exists()
    if resume:
        if finished:
            raise C2SError(
                f"{out} holds a finished run; resume continues interrupted runs. Train into a "
                "new directory (or pass --overwrite to start over)."
            )
        return
    if overwrite:
        return
    if finished:
        raise OutputExistsError(
            f"Output {str(out)!r} already exists. Choose another path, or pass "
            "overwrite=True (--overwrite) to replace it."
        )
    raise OutputExistsError(
        f"{out} holds an interrupted training run. Pass resume='latest' (--resume latest) "
        "to continue it, or overwrite=True (--overwrite) to start over."
    )


def _prepare_run_dir(out: Path, *, overwrite: bool, resume: str | None) -> Path | None:
    """Check the run directory; with ``overwrite``, move the old one aside and return where
    (deleted when the new run completes)."""
    check_run_dir(out, overwrite=overwrite, resume=resume)
    if not out.exists() or resume:
        return None
    old = _tmp_sibling(out)
    os.replace(out, old)
    log.info("Moved the previous output aside to %s until this run completes.", old)
    return old


def _is_main_process() -> bool:
    """Rank 0 of a torchrun / accelerate launch job (or a single process)."""
    return int(os.environ.get("RANK", "0")) == 0


def _latest_checkpoint(ckpt_dir: Path) -> Path | None:
    found = []
    for p in ckpt_dir.glob("checkpoint-*"):
        try:
            found.append((int(p.name.split("-")[-1]), p))
        except ValueError:
            continue
    return max(found)[1] if found else None


def _check_resume(model, ckpt: Path) -> None:
    """Refuse a checkpoint whose architecture or adapter differs from the model's."""
    mine = model.model
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


# -- LoRA ---------------------------------------------------------------------------------------
def _apply_lora(c2s_model, cfg: TrainConfig) -> None:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from c2s.model._model import lora_targets

    if c2s_model.is_peft:  # continue training the loaded adapter
        for name, p in c2s_model.model.named_parameters():
            p.requires_grad = "lora_" in name
        return
    model = c2s_model.model
    targets = lora_targets(model, cfg.lora_targets)
    if getattr(model, "is_loaded_in_4bit", False):
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=cfg.gradient_checkpointing
        )
    lcfg = LoraConfig(
        task_type="CAUSAL_LM",
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
    )
    base_name = c2s_model.name_or_path
    c2s_model.model = get_peft_model(model, lcfg)
    if base_name:
        c2s_model.model.peft_config["default"].base_model_name_or_path = base_name


def _eval_key(task: str, n_tasks: int) -> str:
    return f"eval_{task}_loss" if n_tasks > 1 else "eval_loss"


def _eval_sets(evals: list[dict], names: list[str]):
    """The evaluation set (one per task when there are several, so each gets its own loss)
    and the trained-token count of each."""
    if not evals:
        return None, {}
    tokens = {
        n: sum(sum(1 for v in e["labels"][1:] if v != IGNORE) for e in evals if e["task"] == i)
        for i, n in enumerate(names)
    }
    if len(names) == 1:
        return ExampleSet(evals), tokens
    sets = {n: ExampleSet([e for e in evals if e["task"] == i]) for i, n in enumerate(names)}
    return {n: v for n, v in sets.items() if len(v)}, tokens


def _combine_eval_class():
    from transformers import TrainerCallback

    class CombineEval(TrainerCallback):
        """After each evaluation, log the token-weighted validation loss over all tasks."""

        def __init__(self, names: list[str], tokens: dict[str, int]):
            self.names, self.tokens = names, tokens

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            per = {}
            for h in reversed(state.log_history):
                if h.get("step") != state.global_step:
                    break
                for n in self.names:
                    key = _eval_key(n, len(self.names))
                    if key in h and n not in per:
                        per[n] = h[key]
            if metrics:
                for n in self.names:
                    key = _eval_key(n, len(self.names))
                    if key in metrics:
                        per[n] = metrics[key]
            if len(per) < len([n for n in self.names if self.tokens.get(n)]):
                return  # more task evaluations of this step to come
            total = sum(self.tokens[n] for n in per)
            mean = sum(per[n] * self.tokens[n] for n in per) / max(total, 1)
            state.log_history.append(
                {"step": state.global_step, "c2s_eval_loss": mean, "c2s_eval_per_task": per}
            )

    return CombineEval


def _collator_options(model) -> dict:
    """Left padding with position ids and trimmed logits when the model's forward accepts
    ``position_ids`` and ``logits_to_keep`` (GPT-NeoX, GPT-2, Llama, Gemma and most others in
    transformers 5); plain right padding otherwise."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(base.forward).parameters
    if "position_ids" in params and "logits_to_keep" in params:
        return {"padding_side": "left", "position_ids": True, "trim_logits": True}
    return {}


def _trainer_class(Trainer):
    class C2STrainer(Trainer):
        """Evaluates with a plain collator, so that the counts are of training batches only."""

        def get_eval_dataloader(self, eval_dataset=None):
            counting = self.data_collator
            self.data_collator = PromptCollator(
                counting.pad_token_id,
                padding_side=counting.padding_side,
                position_ids=counting.position_ids,
                trim_logits=counting.trim_logits,
            )
            try:
                return super().get_eval_dataloader(eval_dataset)
            finally:
                self.data_collator = counting

    return C2STrainer


# -- progress -------------------------------------------------------------------------------
def _own_progress(trainer) -> None:
    """Replace the Trainer's printing (to stdout) with a bar and log lines on stderr, so that
    stdout stays free for ``--json``."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from c2s._logging import progress

    class StderrProgress(TrainerCallback):
        bar = None

        def on_train_begin(self, args, state, control, **kw):
            if state.is_world_process_zero:
                self.bar = progress(total=state.max_steps, desc="training", unit="step")
                self.bar.update(state.global_step)

        def on_step_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kw):
            if self.bar is None or not logs:
                return
            shown = {k: round(v, 4) for k, v in logs.items() if k == "loss" or k.endswith("_loss")}
            if shown:
                self.bar.set_postfix(shown)
            log.info("step %d: %s", state.global_step, logs)

        def on_train_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(StderrProgress())


# -- the run ------------------------------------------------------------------------------------
def fine_tune(
    model,
    data,
    config: TrainConfig | None = None,
    *,
    output_dir: str | os.PathLike | None = None,
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
    data
        A :class:`~c2s.io.C2SDataset` or its path. Its split column decides training and
        evaluation cells; the rows used are saved to ``split.json``.
    config
        A :class:`TrainConfig`; keyword ``options`` override its fields
        (e.g. ``tasks=["cell_type_prediction", "cell_type_generation:0.5"], epochs=3``).
    output_dir
        Run directory: checkpoints, logs, and the final model. ``None`` keeps checkpoints in
        a temporary directory and saves nothing (call ``model.save`` yourself).
    overwrite
        Replace a finished run in ``output_dir`` (kept aside until the new run completes).
    callbacks
        Extra ``transformers.TrainerCallback`` objects.

    Returns
    -------
    A :class:`TrainResult` with the loss curve, sizes and tokens/s.
    """
    import tempfile

    from c2s.io import C2SDataset

    cfg = TrainConfig.from_dict({**(config.to_dict() if config else {}), **options})
    ds = data if isinstance(data, C2SDataset) else C2SDataset(data)
    if ds.n_cells == 0:
        raise C2SError(f"{ds.path} has no cells to train on.")
    model_max = getattr(model.model.config, "max_position_embeddings", None) or 1024
    max_length = cfg.max_length or min(int(model_max), 1024)
    if max_length > model_max:
        raise C2SError(
            f"max_length {max_length} exceeds the model's context of {model_max} tokens."
        )

    tmp_run = None
    if output_dir is None:
        tmp_run = tempfile.TemporaryDirectory(prefix="c2s-train-")
        run_dir, old = Path(tmp_run.name), None
    else:
        run_dir = Path(output_dir)
        # Under torchrun / accelerate launch only the main process checks and prepares the
        # directory (the others would see it half-made); a failure there stops every rank.
        old = None
        if _is_main_process():
            old = _prepare_run_dir(run_dir, overwrite=overwrite, resume=cfg.resume)
    try:
        return _run(model, ds, cfg, max_length, run_dir, tmp_run is None, old, callbacks)
    finally:
        if tmp_run is not None:
            tmp_run.cleanup()


def _run(model, ds, cfg, max_length, run_dir, save, old, callbacks) -> TrainResult:
    import torch
    from transformers import Trainer, TrainingArguments

    t0 = time.perf_counter()
    quiet_hf_progress()
    tok = model.tokenizer
    train, stats, labels = build_examples(
        ds,
        tok,
        cfg,
        split=cfg.train_split,
        max_length=max_length,
        limit=cfg.max_train_examples,
        weighted=True,
    )
    if not train:
        raise C2SError(
            f"The {cfg.train_split!r} split of {ds.path} has no cells; re-convert with a split "
            "(c2s convert ... creates one) or choose --train-split."
        )
    _unk_warning(train, tok)
    for i, it in enumerate(train):
        it["example"] = i  # position in the training set (the collator ignores it)
    evals: list[dict] = []
    if cfg.eval_split:
        evals, _, _ = build_examples(
            ds,
            tok,
            cfg,
            split=cfg.eval_split,
            max_length=max_length,
            limit=cfg.max_eval_examples,
            weighted=False,
        )
        if not evals:
            log.warning("The %r split is empty: no evaluation loss.", cfg.eval_split)
    if cfg.lora:
        _apply_lora(model, cfg)
        if save and not cfg.merge:
            check_adapter_base(model.model)
    elif model.is_peft:
        raise C2SError("This model carries LoRA adapters; train it with lora=True (--lora).")

    main = _is_main_process()
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = run_dir / CHECKPOINTS
    resume_from = None
    if cfg.resume:
        resume_from = _latest_checkpoint(ckpt_dir) if cfg.resume == "latest" else Path(cfg.resume)
        if resume_from is None or not resume_from.is_dir():
            raise C2SError(f"No checkpoint to resume from in {ckpt_dir} ({cfg.resume!r}).")
        _check_resume(model, resume_from)
    if main:
        _write_split(run_dir / "split.json", ds, cfg)

    on_gpu = torch.cuda.is_available()
    dtype = next(model.model.parameters()).dtype
    per_epoch = max(1, -(-len(train) // cfg.batch_size) // cfg.grad_accum)
    strategy = "steps" if cfg.eval_steps else "epoch"
    if cfg.max_steps > 0 and not cfg.eval_steps:
        strategy = "steps"
    eval_every = cfg.eval_steps or (cfg.max_steps if cfg.max_steps > 0 else per_epoch)
    args = TrainingArguments(
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
        eval_strategy=strategy if evals else "no",
        eval_steps=eval_every if strategy == "steps" else None,
        save_strategy=strategy,
        save_steps=(cfg.save_steps or eval_every) if strategy == "steps" else None,
        save_total_limit=cfg.save_total_limit,
        seed=cfg.seed,
        data_seed=cfg.seed,
        train_sampling_strategy="group_by_length"
        if cfg.sampling == "group_by_length"
        else "random",
        remove_unused_columns=False,
        report_to="none",
        disable_tqdm=True,  # our own bar on stderr (see _own_progress)
        bf16=on_gpu and dtype == torch.bfloat16,
        fp16=on_gpu and dtype == torch.float16,
        use_cpu=not on_gpu,
        dataloader_num_workers=cfg.num_workers,
        ddp_find_unused_parameters=False,
        **({"activation_checkpointing": True} if cfg.gradient_checkpointing else {}),
    )
    collator = CountingCollator(tok.pad_token_id, **_collator_options(model.model))
    names = [name for name, _ in task_weights(cfg.tasks)]
    eval_sets, eval_tokens = _eval_sets(evals, names)
    combine = _combine_eval_class()(names, eval_tokens)
    trainer = _trainer_class(Trainer)(
        model=model.model,
        args=args,
        train_dataset=ExampleSet(train),
        eval_dataset=eval_sets,
        data_collator=collator,
        processing_class=tok,
        callbacks=[combine, *(callbacks or [])],
    )
    trainer.c2s_collator = collator  # for tests and benchmarks that inspect batches
    _own_progress(trainer)
    t_train = time.perf_counter()
    out = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    seconds = time.perf_counter() - t_train
    eval_loss, per_task = None, {}
    if evals:
        last = [h for h in trainer.state.log_history if "c2s_eval_loss" in h]
        if not last or last[-1].get("step") != trainer.state.global_step:
            trainer.evaluate()
            last = [h for h in trainer.state.log_history if "c2s_eval_loss" in h]
        eval_loss = float(last[-1]["c2s_eval_loss"])
        per_task = dict(last[-1]["c2s_eval_per_task"])
    model.model.eval()

    result = TrainResult(
        steps=int(trainer.state.global_step),
        epochs=float(trainer.state.epoch or 0.0),
        train_loss=float(out.training_loss),
        eval_loss=eval_loss,
        eval_loss_per_task=per_task,
        n_train_examples=len(train),
        n_eval_examples=len(evals),
        n_shortened=stats.get("n_shortened", 0),
        n_dropped=stats.get("n_dropped", 0),
        seconds=seconds,
        tokens=collator.real,
        padded_fraction=collator.padded / max(1, collator.real + collator.padded),
        trainable_parameters=model.n_parameters(trainable=True),
        total_parameters=model.n_parameters(),
        log_history=list(trainer.state.log_history),
        output_dir=str(run_dir) if save else None,
    )
    _update_config(model.config, ds, cfg, labels, stats.get("organisms", []), max_length, result)
    if save and trainer.is_world_process_zero():
        _write_json(run_dir / "train_log.json", result.to_dict())
        _save_into(model, run_dir, merge=cfg.merge)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    log.info(
        "Trained %d steps in %.1f s (%.2f s total).",
        result.steps,
        seconds,
        time.perf_counter() - t0,
    )
    return result


def _update_config(
    c: C2SConfig, ds, cfg: TrainConfig, labels: dict, organisms: list, max_length: int, result
) -> None:
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


def _write_split(path: Path, ds, cfg: TrainConfig) -> None:
    idx = ds.split_indices()
    split_meta = ds.meta.get("split", {})
    payload = {
        "dataset": str(ds.path),
        "seed": split_meta.get("seed"),
        "fractions": split_meta.get("fractions"),
        "train_split": cfg.train_split,
        "eval_split": cfg.eval_split,
        **{k: v.tolist() for k, v in idx.items()},
    }
    _write_json(path, payload)


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}")
    tmp.write_text(json.dumps(obj, indent=1, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(o):
    if isinstance(o, np.integer | np.floating):
        return o.item()
    return str(o)


def _save_into(model, run_dir: Path, *, merge: bool) -> None:
    """Save the model into the run directory; ``c2s_config.json`` is moved in last."""
    staged = run_dir / f"{TMP_PREFIX}model"
    if staged.exists():
        shutil.rmtree(staged)
    model.save(staged, merge=merge)
    names = sorted(p.name for p in staged.iterdir())
    for name in [n for n in names if n != CONFIG_FILE] + [CONFIG_FILE]:
        os.replace(staged / name, run_dir / name)
    staged.rmdir()


__all__ = ["IGNORE", "CountingCollator", "ExampleSet", "TrainResult", "build_examples", "fine_tune"]
