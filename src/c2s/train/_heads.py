"""The label heads of a run, all on the first single-cell label task and one set of prompts:

- selection: label scoring accuracy on the validation cells at each evaluation, a metric the
  Trainer can keep the best checkpoint by (``keep_best="label_accuracy"``);
- the linear probe, fitted after training on the trained model's embeddings of the training
  cells (kept in ``c2s_config.json``, ``predict(mode="probe")``);
- the validation calibration, per-label biases for label scoring fitted after training on
  the validation cells only (kept in ``c2s_config.json``,
  ``predict(calibration="validation")``).

:class:`LabelPrompts` builds each cell's prompt once, whichever heads read it: the validation
cells that selection scores before and during training are not built again for the
calibration after it.
"""

from __future__ import annotations

import numpy as np

from c2s._logging import get_logger
from c2s.train._config import TrainConfig, task_weights
from c2s.train._examples import renderer_for

log = get_logger(__name__)

POOL, HIDDEN_LAYER = "genes", -1  # the probe's embedding
CALIBRATION_CELLS = 2000  # a seeded draw of the validation cells beyond this


def label_task(cfg: TrainConfig):
    """The first single-cell task whose answer is a label, or None."""
    from c2s.prompts import get_task

    for name, _ in task_weights(cfg.tasks):
        task = get_task(name)
        if task.kind == "single" and task.answer == "label":
            return task
    return None


class LabelPrompts:
    """The label task's prompts for a run's cells, each cell's built once (with as many genes
    as fit in ``max_length`` tokens: :func:`c2s.encoding.fit_prompts`), where its sentence
    sits in the prompt, and its label.

    :meth:`of` gives those of one split; ``task`` is None when the run trains no single-cell
    label task."""

    def __init__(self, model, ds, cfg: TrainConfig, max_length: int):
        self.model, self.ds, self.cfg, self.max_length = model, ds, cfg, max_length
        self.task = label_task(cfg)
        self._cells: dict[int, tuple[str, tuple[int, int], str] | None] = {}

    def of(self, split: str, limit: int | None = None):
        """The prompts for the labelled cells of ``split`` (at most ``limit``, a seeded
        draw) and their labels: ``(task, prompts, spans, y)``; ``task`` is None when the run
        trained no single-cell label task or the data has no label column."""
        task, ds = self.task, self.ds
        rows = np.asarray(ds.split_indices().get(split, []), dtype=np.int64)
        if task is None or task.label not in ds.obs_columns or not len(rows):
            return None, [], [], np.array([], dtype=object)
        if limit is not None and len(rows) > limit:
            rng = np.random.default_rng([self.cfg.seed, 7])
            rows = np.sort(rng.choice(rows, limit, replace=False))
        self._build([int(i) for i in rows if int(i) not in self._cells])
        cells = [self._cells[int(i)] for i in rows]
        cells = [c for c in cells if c is not None]
        prompts = [p for p, _, _ in cells]
        spans = [s for _, s, _ in cells]
        return task, prompts, spans, np.array([y for _, _, y in cells], dtype=object)

    def _build(self, rows: list[int]) -> None:
        """Render the prompts of dataset rows not built yet (None for a cell without a label
        or genes)."""
        from c2s.encoding import fit_prompts

        if not rows:
            return
        task, cfg = self.task, self.cfg
        r = renderer_for(task.name, cfg)
        wanted = (task.label, "organism", *task.columns(r.profile))
        cols = [c for c in self.ds.obs_columns if c in wanted]
        cs = self.ds.sentences(rows=rows, n_genes=cfg.n_genes, values=False, obs_columns=cols)
        y = cs.obs[task.label].astype(str).to_numpy()
        usable = cs.obs[task.label].notna().to_numpy() & (cs.lengths > 0)
        units = [(i,) for i in np.flatnonzero(usable).tolist()]
        fitted = fit_prompts(r, cs, units, self.model.tokenizer, self.max_length, keep_ids=False)
        self._cells.update(dict.fromkeys(rows))
        for (i,), prompt, span in zip(units, fitted.prompts, fitted.spans(cs, units), strict=True):
            self._cells[rows[i]] = (prompt, span, y[i])


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
    def build(cls, prompts: LabelPrompts, labels, batch_size: int, limit: int | None = None):
        """Over ``cfg.eval_split`` (at most ``limit`` cells, default
        ``cfg.max_eval_examples``)."""
        cfg = prompts.cfg
        limit = cfg.max_eval_examples if limit is None else limit
        task, texts, _, y = prompts.of(cfg.eval_split, limit)
        if task is None or not len(y) or len(labels) < 2:
            return None
        r = renderer_for(task.name, cfg)
        answers = [r.answer(x) for x in labels]
        return cls(prompts.model, texts, y, list(labels), answers, batch_size, task)

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


def fit_label_probe(prompts: LabelPrompts, batch_size: int) -> dict | None:
    """Embed the training cells with the label task's prompts and fit the probe; None when
    the run trained no single-cell label task."""
    from c2s.model import embed_prompts, fit_probe

    cfg, model = prompts.cfg, prompts.model
    task, texts, spans, y = prompts.of(cfg.train_split)
    labels = sorted(set(y))
    if task is None or len(labels) < 2 or len(y) < 2:
        return None
    X = embed_prompts(
        model, texts, spans, pool=POOL, hidden_layer=HIDDEN_LAYER, batch_size=batch_size
    )
    probe = fit_probe(X, y, labels)
    probe.update(
        task=task.name,
        label=task.label,
        pool=POOL,
        hidden_layer=HIDDEN_LAYER,
        n_genes=cfg.n_genes,
    )
    log.info("Linear probe on %d training cells: accuracy %.3f.", len(y), probe["train_accuracy"])
    return probe


def fit_label_calibration(prompts: LabelPrompts, labels: list[str], batch_size: int) -> dict | None:
    """Score the ``cfg.eval_split`` cells' prompts against ``labels`` (the trained label
    values) and fit :func:`c2s.model.fit_label_bias`; None without validation cells or a
    single-cell label task. No other split is read."""
    from c2s.model import fit_label_bias

    cfg = prompts.cfg
    if not cfg.eval_split:
        return None
    val = LabelAccuracy.build(prompts, labels, batch_size, limit=CALIBRATION_CELLS)
    if val is None or not set(val.y) & set(labels):
        return None
    cal = fit_label_bias(val.scores(), val.y, labels)
    cal.update(task=val.task.name, label=val.task.label, split=cfg.eval_split)
    log.info(
        "Validation calibration on %d %s cells: label scoring accuracy %.3f -> %.3f.",
        cal["n_cells"],
        cfg.eval_split,
        cal["accuracy_before"],
        cal["accuracy_after"],
    )
    return cal


__all__ = [
    "LabelAccuracy",
    "LabelPrompts",
    "fit_label_calibration",
    "fit_label_probe",
    "label_task",
    "selection_args",
]
