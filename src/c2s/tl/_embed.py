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
    prepare,
    task_of,
)
from c2s.tl._results import EmbeddingResult


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
) -> EmbeddingResult | None:
    """Cell embeddings: hidden states of the model's ``hidden_layer`` pooled over the
    cell-sentence tokens of the ``task`` prompt (``pool="genes"``), over the whole prompt
    (``"prompt"``) or at its last token (``"last"``). Padding is never pooled, so a cell's
    embedding does not depend on the cells batched with it.

    ``data``, ``split``, ``layer``, ``use_raw``, ``var_names`` and ``inplace`` are as in
    :func:`predict`.

    Returns
    -------
    With ``inplace=True``, None; the AnnData gets ``obsm[key_added]`` (cells x hidden size)
    and ``uns[key_added]`` (pool, hidden_layer, task, n_genes). With ``inplace=False``, an
    :class:`~c2s.tl.EmbeddingResult` (``.to_numpy()`` the cells x dimensions matrix,
    ``.to_frame()`` a DataFrame with columns ``c2s_0`` ..., ``.write(adata)`` the fields
    above). Cells that express no gene get NaN (named in a warning).
    """
    check_inplace(data, inplace)
    at_least(batch_size=(batch_size, 1))
    if task_of(task).kind != "single":
        raise C2SError("embed uses a single-cell prompt task (e.g. cell_type_prediction).")
    cells = {"split": split, "layer": layer, "use_raw": use_raw, "var_names": var_names}
    prep = prepare(
        data, model, task=task, n_genes=n_genes, organism=organism, check_task=False, cells=cells
    )
    found = embed_cells(
        prep.model, prep.renderer, prep.cells, pool, hidden_layer, batch_size, progress_bar
    )
    X = np.full((len(prep.index), found.shape[1]), np.nan, dtype=found.dtype)
    X[prep.index.get_indexer(prep.cells.obs.index)] = found  # cells with no gene stay NaN
    info = {"pool": pool, "hidden_layer": hidden_layer, "task": task, "n_genes": prep.n_genes}
    result = EmbeddingResult(prep.index, X, info, key_added=key_added)
    if inplace:
        result.write(data)
        return None
    return result


def embed_cells(m, r, cs, pool, hidden_layer, batch_size, progress_bar=None) -> np.ndarray:
    """Pooled hidden states of every cell of ``cs`` under renderer ``r``'s single-cell prompt
    (the cell-sentence span of each prompt, for ``pool="genes"``)."""
    from c2s.model import embed_prompts

    units = [(i,) for i in range(cs.n_cells)]
    fitted = fit_prompts(r, cs, units, m, reserve=0, keep_ids=False)
    return embed_prompts(
        m,
        fitted.prompts,
        fitted.spans(cs, units),
        pool=pool,
        hidden_layer=hidden_layer,
        batch_size=batch_size,
        progress_bar=progress_bar,
    )


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

    inputs = {"split": split, "layer": layer, "use_raw": use_raw, "var_names": var_names}
    prep = prepare(
        data, model, task=task, n_genes=n_genes, organism=organism, check_task=False, cells=inputs
    )
    cs, index = prep.cells, prep.index
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
    for row in rows:
        fitted = prep.prompts([(row,)], reserve=0)
        prompt = fitted.prompts[0]
        start, end = fitted.spans(cs, [(row,)])[0]
        sentence = prompt[start:end]
        spans, genes, pos = [], sentence.split(" "), start
        for g in genes:
            spans.append((pos, pos + len(g)))
            pos += len(g) + 1
        A = gene_attention(prep.model, prompt, spans, hidden_layer=hidden_layer)
        out[str(cs.obs.index[row])] = pd.DataFrame(A, index=genes, columns=genes)
    return out
