"""After training: a linear probe on the trained model's embeddings of the training cells,
for the first single-cell label task (kept in ``c2s_config.json``)."""

from __future__ import annotations

import numpy as np

from c2s._logging import get_logger
from c2s.train._config import TrainConfig, task_weights
from c2s.train._examples import renderer_for

log = get_logger(__name__)

POOL, HIDDEN_LAYER = "genes", -1


def label_task(cfg: TrainConfig):
    """The first single-cell task whose answer is a label, or None."""
    from c2s.prompts import get_task

    for name, _ in task_weights(cfg.tasks):
        task = get_task(name)
        if task.kind == "single" and task.answer == "label":
            return task
    return None


def label_prompts(model, ds, cfg: TrainConfig, split: str, max_length: int, limit=None):
    """The label task's prompts for the labelled cells of ``split`` (at most ``limit``, a
    seeded draw), where each cell sentence sits in its prompt, and the labels.

    Returns ``(task, prompts, spans, y)``; ``task`` is None when the run trained no
    single-cell label task or the data has no label column.
    """
    from c2s.encoding import prompt_within
    from c2s.prompts import sentence_texts

    task = label_task(cfg)
    rows = np.asarray(ds.split_indices().get(split, []), dtype=np.int64)
    if task is None or task.label not in ds.obs_columns or not len(rows):
        return None, [], [], np.array([], dtype=object)
    if limit is not None and len(rows) > limit:
        rng = np.random.default_rng([cfg.seed, 7])
        rows = np.sort(rng.choice(rows, limit, replace=False))
    r = renderer_for(task.name, cfg)
    cols = [c for c in ds.obs_columns if c in (task.label, "organism", *task.columns(r.profile))]
    cs = ds.sentences(rows=rows, top_k=cfg.n_genes, values=False, obs_columns=cols)
    y = cs.obs[task.label].astype(str).to_numpy()
    keep = np.flatnonzero(cs.obs[task.label].notna().to_numpy() & (cs.lengths > 0))
    prompts, spans = [], []
    for i in keep.tolist():
        prompt, k = prompt_within(r, cs, [i], model.tokenizer, max_length)
        sentence = sentence_texts(cs, [i], k)[0]
        start = prompt.find(sentence)
        prompts.append(prompt)
        spans.append((start, start + len(sentence)))
    return task, prompts, spans, y[keep]


def fit_label_probe(model, ds, cfg: TrainConfig, max_length: int, batch_size: int) -> dict | None:
    """Embed the training cells with the label task's prompts and fit the probe; None when
    the run trained no single-cell label task."""
    from c2s.model import embed_prompts, fit_probe

    task, prompts, spans, y = label_prompts(model, ds, cfg, cfg.train_split, max_length)
    labels = sorted(set(y))
    if task is None or len(labels) < 2 or len(y) < 2:
        return None
    X = embed_prompts(
        model, prompts, spans, pool=POOL, hidden_layer=HIDDEN_LAYER, batch_size=batch_size
    )
    probe = fit_probe(X, y, labels)
    probe.update(
        task=task.name, label=task.label, pool=POOL, hidden_layer=HIDDEN_LAYER,
        n_genes=cfg.n_genes,
    )  # fmt: skip
    log.info("Linear probe on %d training cells: accuracy %.3f.", len(y), probe["train_accuracy"])
    return probe


__all__ = ["fit_label_probe", "label_prompts", "label_task"]
