"""Keeping the best weights: label scoring accuracy on validation cells at each evaluation,
as a metric the Trainer can select checkpoints by (``keep_best="label_accuracy"``)."""

from __future__ import annotations

import numpy as np

from c2s._logging import get_logger
from c2s.train._config import TrainConfig
from c2s.train._examples import renderer_for
from c2s.train._probe import label_prompts

log = get_logger(__name__)


class LabelAccuracy:
    """The validation cells' label-task prompts and the trained labels' answers, scored with
    the model as it is now (:meth:`scores`; calling it gives the accuracy); ``None`` from
    :meth:`build` when there is nothing to score. The validation calibration fits on the
    same scores."""

    def __init__(self, model, prompts, y, labels, answers, batch_size, task):
        self.model, self.prompts, self.y = model, prompts, y
        self.labels, self.answers, self.batch_size = labels, answers, batch_size
        self.task = task

    @classmethod
    def build(cls, model, ds, cfg: TrainConfig, labels, max_length, batch_size, limit=None):
        """Over ``cfg.eval_split`` (at most ``limit`` cells, default
        ``cfg.max_eval_examples``)."""
        limit = cfg.max_eval_examples if limit is None else limit
        task, prompts, _, y = label_prompts(model, ds, cfg, cfg.eval_split, max_length, limit)
        if task is None or not len(y) or len(labels) < 2:
            return None
        r = renderer_for(task.name, cfg)
        answers = [r.answer(x) for x in labels]
        return cls(model, prompts, y, list(labels), answers, batch_size, task)

    def scores(self):
        """(cells x labels) log-likelihoods of the labels' answers."""
        from c2s.model import score_answers

        return score_answers(
            self.model, self.prompts, self.answers, batch_size=self.batch_size, progress_bar=False
        )

    def __call__(self) -> float:
        pred = np.asarray(self.labels, dtype=object)[self.scores().argmax(1)]
        return float(np.mean(pred == self.y))


def selection_args(keep_best: str, has_evals: bool) -> dict:
    """TrainingArguments for keeping the best checkpoint (none for ``"last"``)."""
    if keep_best == "last" or not has_evals:
        if keep_best != "last":
            log.warning(
                "keep_best=%r needs validation examples; keeping the last weights.", keep_best
            )
        return {}
    metric = {"loss": "c2s_loss", "label_accuracy": "label_accuracy"}[keep_best]
    return {
        "load_best_model_at_end": True,
        "metric_for_best_model": metric,
        "greater_is_better": keep_best == "label_accuracy",
    }


__all__ = ["LabelAccuracy", "selection_args"]
