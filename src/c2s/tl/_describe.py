"""``describe``: a natural-language summary per group of cells."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pandas as pd

from c2s.tl._inputs import at_least, check_sampling, prepare


def describe(
    data,
    model,
    *,
    group_by: Sequence[str] | None = None,
    n_genes: int | None = None,
    organism: str | None = None,
    max_cells: int = 20,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float | None = None,
    seed: int = 0,
    batch_size: int = 4,
    split: str | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    var_names: str | None = None,
    strict: bool = False,
    progress_bar: bool | None = None,
    backend: Literal["hf", "vllm"] = "hf",
) -> pd.DataFrame:
    """A natural-language summary per group of cells (``group_by`` obs columns; without them,
    runs of ``max_cells`` cells). Greedy decoding by default; ``temperature > 0`` samples
    (with ``top_p`` nucleus sampling and ``seed``). ``backend="vllm"`` decodes with vLLM on a
    GPU.

    ``data``, ``split``, ``layer``, ``use_raw``, ``var_names`` and ``strict`` are as in
    :func:`predict`.

    Returns
    -------
    A DataFrame with one row per group: ``cells`` (its cell ids), ``description`` and the
    ``group_by`` values; nothing is written into ``data``.
    """
    from c2s.model import generate_free

    check_sampling(temperature, None, top_p, seed)
    at_least(
        max_cells=(max_cells, 1), max_new_tokens=(max_new_tokens, 1), batch_size=(batch_size, 1)
    )
    cells = {"split": split, "layer": layer, "use_raw": use_raw, "var_names": var_names}
    prep = prepare(
        data,
        model,
        task="natural_language_interpretation",
        n_genes=n_genes,
        organism=organism,
        strict=strict,
        cells=cells,
        renderer_kw={"max_cells": max_cells, "min_cells": 1},
    )
    units = prep.units(group_by)
    prompts = prep.prompts(units, reserve=max_new_tokens).prompts
    sampling = {"temperature": temperature, "top_p": top_p, "seed": seed}
    texts = generate_free(
        prep.model,
        prompts,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        progress_bar=progress_bar,
        backend=backend,
        **sampling,
    )
    return _groups_frame(prep, units, texts, group_by)


def _groups_frame(prep, units, texts, group_by) -> pd.DataFrame:
    """One row per group: its cells, its description, its ``group_by`` values."""
    cs, r = prep.cells, prep.renderer
    rows = []
    for u, text in zip(units, texts, strict=True):
        row = {"cells": [str(cs.obs.index[i]) for i in u], "description": r.task.parse(text)}
        for c in group_by or []:
            row[c] = cs.obs.iloc[u[0]][c]
        rows.append(row)
    return pd.DataFrame(rows)
