"""After training: per-label biases for label scoring, fitted on the validation cells only
(kept in ``c2s_config.json`` for ``c2s.tl.predict(calibration="validation")``)."""

from __future__ import annotations

from c2s._logging import get_logger
from c2s.train._config import TrainConfig
from c2s.train._examples import renderer_for
from c2s.train._probe import label_prompts

log = get_logger(__name__)

MAX_CELLS = 2000  # a seeded draw of the validation cells beyond this


def fit_label_calibration(
    model, ds, cfg: TrainConfig, labels: list[str], max_length: int, batch_size: int
) -> dict | None:
    """Score the ``cfg.eval_split`` cells' prompts against ``labels`` (the trained label
    values) and fit :func:`c2s.model.fit_label_bias`; None without validation cells or a
    single-cell label task. No other split is read."""
    from c2s.model import fit_label_bias, score_answers

    split = cfg.eval_split
    if not split or len(labels) < 2:
        return None
    task, prompts, _, y = label_prompts(model, ds, cfg, split, max_length, limit=MAX_CELLS)
    if task is None or not len(y) or not set(y) & set(labels):
        return None
    r = renderer_for(task.name, cfg)
    ll = score_answers(model, prompts, [r.answer(x) for x in labels], batch_size=batch_size)
    cal = fit_label_bias(ll, y, labels)
    cal.update(task=task.name, label=task.label, split=split)
    log.info(
        "Validation calibration on %d %s cells: label scoring accuracy %.3f -> %.3f.",
        cal["n_cells"], split, cal["accuracy_before"], cal["accuracy_after"],
    )  # fmt: skip
    return cal


__all__ = ["fit_label_calibration"]
