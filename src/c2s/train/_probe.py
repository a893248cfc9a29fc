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


def fit_label_probe(model, ds, cfg: TrainConfig, max_length: int, batch_size: int) -> dict | None:
    """Embed the training cells with the label task's prompts and fit the probe; None when
    the run trained no single-cell label task."""
    from c2s.encoding import prompt_within
    from c2s.model import embed_prompts, fit_probe
    from c2s.prompts import sentence_texts

    task = label_task(cfg)
    if task is None:
        return None
    r = renderer_for(task.name, cfg)
    rows = ds.split_indices()[cfg.train_split]
    cols = [c for c in ds.obs_columns if c in (task.label, "organism", *task.columns(r.profile))]
    cs = ds.sentences(rows=rows, top_k=cfg.n_genes, values=False, obs_columns=cols)
    if task.label not in cs.obs:
        return None
    y = cs.obs[task.label].astype(str).to_numpy()
    keep = np.flatnonzero(cs.obs[task.label].notna().to_numpy() & (cs.lengths > 0))
    labels = sorted(set(y[keep]))
    if len(labels) < 2 or len(keep) < 2:
        return None
    prompts, spans = [], []
    for i in keep.tolist():
        prompt, k = prompt_within(r, cs, [i], model.tokenizer, max_length)
        sentence = sentence_texts(cs, [i], k)[0]
        start = prompt.find(sentence)
        prompts.append(prompt)
        spans.append((start, start + len(sentence)))
    X = embed_prompts(
        model, prompts, spans, pool=POOL, hidden_layer=HIDDEN_LAYER, batch_size=batch_size
    )
    probe = fit_probe(X, y[keep], labels)
    probe.update(
        task=task.name, label=task.label, pool=POOL, hidden_layer=HIDDEN_LAYER,
        n_genes=cfg.n_genes,
    )  # fmt: skip
    log.info(
        "Linear probe on %d training cells: accuracy %.3f.", len(keep), probe["train_accuracy"]
    )
    return probe


__all__ = ["fit_label_probe", "label_task"]
