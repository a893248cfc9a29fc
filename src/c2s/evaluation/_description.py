"""Descriptions: the model's summary of each held-out group of cells next to the group's
reference text, by text similarity (when the offline sentence model is on this machine) and
shared-word F1 (always)."""

from __future__ import annotations

import time

from c2s._errors import C2SError
from c2s.evaluation._options import EvalOptions

TASK = "natural_language_interpretation"


def description(m, ds, o: EvalOptions) -> dict:
    from c2s.metrics import text_similarity, token_f1
    from c2s.prompts import get_task
    from c2s.tl import describe

    key = get_task(TASK).label
    if key not in ds.obs_columns:
        raise C2SError(f"The dataset has no {key!r} column (the reference texts) for {TASK!r}.")
    t = time.perf_counter()
    d = describe(ds, m, split=o.split, group_by=[key], **o.verb_kw())
    seconds = time.perf_counter() - t
    d = d[d[key].notna()]
    gen, ref = d["description"].astype(str).tolist(), d[key].astype(str).tolist()
    out = {"n_groups": len(gen), "seconds": seconds, "token_f1": token_f1(gen, ref)}
    sim = text_similarity(gen, ref)
    if sim is None:
        out["text_similarity"] = "skipped: the offline sentence-embedding model is not installed"
    else:
        out["text_similarity"] = {"cosine_mean": sim["cosine_mean"], "model": sim["model"]}
    return out
