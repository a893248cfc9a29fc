"""``embed`` (pooled hidden states per cell) and ``attention`` (gene-by-gene attention of
single cells)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from c2s._errors import C2SError
from c2s.tl._inputs import (
    at_least,
    check_inplace,
    fit_prompts,
    is_anndata,
    load_model,
    read_cells,
    renderer,
    sentence_span,
    settings,
)


def embed(
    data,
    model,
    *,
    key_added: str = "X_c2s",
    pool: Literal["genes", "prompt", "last"] = "genes",
    hidden_layer: int = -1,
    task: str = "cell_type_prediction",
    n_genes: int | None = None,
    organism: str | None = None,
    batch_size: int = 8,
    split: str | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    var_names: str | None = None,
    inplace: bool = True,
    progress_bar: bool | None = None,
):
    """Cell embeddings: hidden states of the model's ``hidden_layer`` pooled over the
    cell-sentence tokens of the ``task`` prompt (``pool="genes"``), over the whole prompt
    (``"prompt"``) or at its last token (``"last"``). Padding is never pooled, so a cell's
    embedding does not depend on the cells batched with it.

    ``data``, ``split``, ``layer``, ``use_raw``, ``var_names`` and ``inplace`` are as in
    :func:`predict`.

    Returns
    -------
    With ``inplace=True``, None; the AnnData gets ``obsm[key_added]`` (cells x hidden size)
    and ``uns[key_added]`` (pool, hidden_layer, task, n_genes). With ``inplace=False``, a
    DataFrame (cells x dimensions, columns ``c2s_0`` ...). Cells that express no gene get
    NaN (named in a warning).
    """
    check_inplace(data, inplace)
    m = load_model(model)
    k, org = settings(m, n_genes, organism)
    at_least(batch_size=(batch_size, 1))
    cs, index = read_cells(
        data, m, n_genes=k, split=split, layer=layer, use_raw=use_raw, var_names=var_names
    )
    r = renderer(m, task, k, org)
    if r.task.kind != "single":
        raise C2SError("embed uses a single-cell prompt task (e.g. cell_type_prediction).")
    found = embed_cells(m, r, cs, pool, hidden_layer, batch_size, progress_bar)
    X = np.full((len(index), found.shape[1]), np.nan, dtype=found.dtype)
    X[index.get_indexer(cs.obs.index)] = found  # cells with no gene stay NaN
    if inplace and is_anndata(data):
        data.obsm[key_added] = X
        data.uns[key_added] = {
            "pool": pool, "hidden_layer": hidden_layer, "task": task, "n_genes": k,
        }  # fmt: skip
        return None
    return pd.DataFrame(X, index=index, columns=[f"c2s_{j}" for j in range(X.shape[1])])


def embed_cells(m, r, cs, pool, hidden_layer, batch_size, progress_bar=None) -> np.ndarray:
    """Pooled hidden states of every cell of ``cs`` under renderer ``r``'s single-cell prompt
    (the cell-sentence span of each prompt, for ``pool="genes"``)."""
    from c2s.model import embed_prompts

    units = [(i,) for i in range(cs.n_cells)]
    prompts, ks, _ = fit_prompts(r, cs, units, m, reserve=0, keep_ids=False)
    spans = []
    for i, p in enumerate(prompts):
        sentence, start = sentence_span(p, cs, i, ks[i])
        spans.append((start, start + len(sentence)))
    return embed_prompts(
        m, prompts, spans, pool=pool, hidden_layer=hidden_layer, batch_size=batch_size,
        progress_bar=progress_bar,
    )  # fmt: skip


def attention(
    data,
    model,
    *,
    cells: Sequence[int] | None = None,
    hidden_layer: int = -1,
    task: str = "cell_type_prediction",
    n_genes: int | None = None,
    organism: str | None = None,
    split: str | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    var_names: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Gene-by-gene attention of single cells, from the model's ``hidden_layer``, aggregated
    from tokens to genes (rows: attending gene, columns: attended gene; mean over heads and
    over the attending gene's tokens, sum over the attended gene's tokens).

    ``cells``: row indices (default: the first 10). ``data``, ``split``, ``layer``,
    ``use_raw`` and ``var_names`` are as in :func:`predict`.

    Returns
    -------
    ``{cell id: DataFrame}`` (genes x genes); nothing is written into ``data``.
    """
    from c2s.model import gene_attention

    m = load_model(model)
    k, org = settings(m, n_genes, organism)
    cs, index = read_cells(
        data, m, n_genes=k, split=split, layer=layer, use_raw=use_raw, var_names=var_names
    )
    r = renderer(m, task, k, org)
    if cells is None:
        rows = list(range(min(10, cs.n_cells)))
    else:
        asked = [int(i) for i in cells]
        bad = [i for i in asked if not -len(index) <= i < len(index)]
        if bad:
            raise C2SError(f"cells {bad} are not rows of the input ({len(index)} cells).")
        where = cs.obs.index.get_indexer(index[asked])
        rows = [int(i) for i in where if i >= 0]  # cells with no gene were left out (warned)
    out = {}
    for i in rows:
        prompt, ks, _ = fit_prompts(r, cs, [(i,)], m, reserve=0)
        sentence, start = sentence_span(prompt[0], cs, i, ks[0])
        spans, genes, pos = [], sentence.split(" "), start
        for g in genes:
            spans.append((pos, pos + len(g)))
            pos += len(g) + 1
        A = gene_attention(m, prompt[0], spans, hidden_layer=hidden_layer)
        out[str(cs.obs.index[i])] = pd.DataFrame(A, index=genes, columns=genes)
    return out
