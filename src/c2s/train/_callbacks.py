"""Hooks into the Hugging Face Trainer: the combined validation loss, progress on stderr,
the collator's options for a model, and evaluation with a plain collator."""

from __future__ import annotations

from pathlib import Path

from c2s._errors import C2SError
from c2s._logging import get_logger
from c2s.train._collate import PromptCollator
from c2s.train._rank_data import RankExamples
from c2s.train._sampler import ShuffledLengthBuckets

log = get_logger(__name__)


def eval_key(task: str, n_tasks: int) -> str:
    return f"eval_{task}_loss" if n_tasks > 1 else "eval_loss"


def combine_eval_class():
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
                    key = eval_key(n, len(self.names))
                    if key in h and n not in per:
                        per[n] = h[key]
            if metrics:
                for n in self.names:
                    key = eval_key(n, len(self.names))
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


def collator_options(model) -> dict:
    """Left padding with position ids and trimmed logits when the model's forward accepts
    ``position_ids`` and ``logits_to_keep`` (GPT-NeoX, GPT-2, Llama, Gemma and most others in
    transformers 5); plain right padding otherwise."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(base.forward).parameters
    if "position_ids" in params and "logits_to_keep" in params:
        return {"padding_side": "left", "position_ids": True, "trim_logits": True}
    return {}


def trainer_class(Trainer):
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

        def evaluate(self, *args, **kwargs):
            """The Trainer's evaluation, plus ``eval_c2s_loss`` (the token-weighted loss
            over tasks) and, when set up, ``eval_label_accuracy``, so checkpoints can be
            selected by either."""
            metrics = super().evaluate(*args, **kwargs)
            if args or kwargs.get("eval_dataset") is not None:
                return metrics  # an evaluation of one dataset, not the run's
            step = self.state.global_step
            for h in reversed(self.state.log_history):
                if h.get("step") == step and "c2s_eval_loss" in h:
                    metrics["eval_c2s_loss"] = h["c2s_eval_loss"]
                    break
            scorer = getattr(self, "c2s_label_accuracy", None)
            if scorer is not None:
                metrics["eval_label_accuracy"] = scorer()
                self.model.train()
                self.log({"eval_label_accuracy": metrics["eval_label_accuracy"]})
            return metrics

        def _get_train_sampler(self, train_dataset=None):
            dataset = self.train_dataset if train_dataset is None else train_dataset
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            if isinstance(dataset, RankExamples):  # each process holds its own examples
                return dataset.sampler(
                    self._train_batch_size,
                    self._train_batch_size * self.args.gradient_accumulation_steps,
                    seed,
                    by_length=self.args.train_sampling_strategy == "group_by_length",
                )
            if self.args.train_sampling_strategy != "group_by_length" or not hasattr(
                dataset, "lengths"
            ):
                return super()._get_train_sampler(train_dataset)
            return ShuffledLengthBuckets(
                dataset.lengths(),
                self.args.train_batch_size * self.args.gradient_accumulation_steps,
                seed=seed,
            )

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            model = self.model if model is None else model
            ckpt = Path(resume_from_checkpoint)
            full = any((ckpt / name).is_file() for name in _FULL_WEIGHTS)
            if hasattr(model, "peft_config") or not full or self.is_fsdp_enabled:
                return super()._load_from_checkpoint(resume_from_checkpoint, model)
            load_checkpoint_strictly(model, ckpt)
            return None

        def _load_best_model(self):
            # the Trainer's own loader drops renamed layers (GPT-NeoX's output layer) silently,
            # which left a model mixing the best checkpoint with the last weights
            ckpt = Path(self.state.best_model_checkpoint)
            full = any((ckpt / name).is_file() for name in _FULL_WEIGHTS)
            if hasattr(self.model, "peft_config") or not full or self.is_fsdp_enabled:
                return super()._load_best_model()
            log.info("Keeping the best weights: %s (%s).", ckpt.name, self.state.best_metric)
            load_checkpoint_strictly(self.model, ckpt)
            return None

    return C2STrainer


_FULL_WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def load_checkpoint_strictly(model, ckpt: Path) -> None:
    """Load a full-weights checkpoint into ``model``, every key accounted for.

    The Trainer's own loader reads the file's keys as they are and skips, without error, any
    it does not know; checkpoints store some layers under older names (GPT-NeoX's output
    layer is ``embed_out`` on disk, ``lm_head`` in the model), so training would go on from a
    freshly initialized layer. The checkpoint is loaded the way ``from_pretrained`` reads it
    (renamings applied) and any missing, unexpected or mis-shaped key is an error.
    """
    import torch

    dtype = next(model.parameters()).dtype
    loaded, info = type(model).from_pretrained(ckpt, dtype=dtype, output_loading_info=True)
    problems = {k: sorted(info.get(k) or []) for k in ("missing_keys", "unexpected_keys")}
    problems["mismatched_keys"] = sorted(str(x) for x in info.get("mismatched_keys") or [])
    bad = {k: v for k, v in problems.items() if v}
    if bad:
        detail = "; ".join(f"{k.replace('_', ' ')}: {', '.join(v[:5])}" for k, v in bad.items())
        raise C2SError(
            f"Cannot load checkpoint {ckpt}: its weights do not fit the model ({detail}). "
            "Resume with the model the run started from, or start over with --overwrite."
        )
    with torch.no_grad():
        model.load_state_dict(loaded.state_dict(), strict=True)
    del loaded


def _shown(key: str) -> bool:
    """A logged value the progress bar shows: the losses and the mean reward."""
    return key in ("loss", "reward") or key.endswith("_loss")


def own_progress(trainer, desc: str = "training") -> None:
    """Replace the Trainer's printing (to stdout) with a bar and log lines on stderr, so that
    stdout stays free for ``--json``."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from c2s._logging import progress

    class StderrProgress(TrainerCallback):
        bar = None

        def on_train_begin(self, args, state, control, **kw):
            if state.is_world_process_zero:
                self.bar = progress(total=state.max_steps, desc=desc, unit="step")
                self.bar.update(state.global_step)

        def on_step_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kw):
            if self.bar is None or not logs:
                return
            shown = {k: round(v, 4) for k, v in logs.items() if _shown(k)}
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
