"""After training: per-label biases for label scoring, fitted on the validation cells only
(kept in ``c2s_config.json`` for ``c2s.tl.predict(calibration="validation")``)."""

from __future__ import annotations

from c2s._logging import get_logger
from c2s.train._config import TrainConfig
from c2s.train._select import LabelAccuracy

log = get_logger(__name__)

MAX_CELLS = 2000  # a seeded draw of the validation cells beyond this


def fit_label_calibration(
    model, ds, cfg: TrainConfig, labels: list[str], max_length: int, batch_size: int
) -> dict | None:
    """Score the ``cfg.eval_split`` cells' prompts against ``labels`` (the trained label
    values) and fit :func:`c2s.model.fit_label_bias`; None without validation cells or a
    single-cell label task. No other split is read."""
    from c2s.model import fit_label_bias

    if not cfg.eval_split:
        return None
    val = LabelAccuracy.build(model, ds, cfg, labels, max_length, batch_size, limit=MAX_CELLS)
    if val is None or not set(val.y) & set(labels):
        return None
    cal = fit_label_bias(val.scores(), val.y, labels)
    cal.update(task=val.task.name, label=val.task.label, split=cfg.eval_split)
    log.info(
        "Validation calibration on %d %s cells: label scoring accuracy %.3f -> %.3f.",
        cal["n_cells"], cfg.eval_split, cal["accuracy_before"], cal["accuracy_after"],
    )  # fmt: skip
    return cal


__all__ = ["fit_label_calibration"]
