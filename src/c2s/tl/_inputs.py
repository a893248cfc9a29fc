"""What every verb does before the model runs (:func:`prepare`): load the model, take its
settings, check that it was trained for the task, resolve the input once (an AnnData, or a c2s
dataset or one split of it) into top-``n_genes`` sentences, and build the renderer; then the
units (cells or groups of cells) and the prompts that fit the model's context.

The contract shared by the verbs (tested over their signatures):

- ``data`` is an AnnData (ranked here; ``layer``, ``use_raw`` and ``var_names`` choose its
  expression and gene names) or a c2s dataset (a directory or
  :class:`~c2s.io.C2SDataset`, ranked already; ``split`` picks one split);
- ``layer`` always means an AnnData layer, ``hidden_layer`` a layer of the model;
- a verb that annotates cells writes into the AnnData and returns ``None`` when
  ``inplace=True`` (the default), and writes nothing and returns the results when
  ``inplace=False``; a dataset cannot be written, so it needs ``inplace=False``.

Nothing here changes what it is given: the AnnData, the dataset and the renderer stay as
they were.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from c2s._anndata import is_anndata
from c2s._errors import C2SError
from c2s._warn import warn_user


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """Warn at the first frame outside c2s (:func:`c2s._warn.warn_user`)."""
    warn_user(message, category)


@dataclass(frozen=True)
class Prepared:
    """What a verb needs before the model runs: the model, genes per sentence, organism, the
    task's renderer, and (with input cells) the top-``n_genes`` sentences of the cells that
    express a gene (``cells``) and the ids of all the input's cells (``index``)."""

    model: Any
    n_genes: int
    organism: str | None
    renderer: Any
    cells: Any = None
    index: Any = None

    def units(self, group_by: Sequence[str] | None = None) -> list[tuple[int, ...]]:
        """The prompts' cells (rows of ``cells``): see :func:`units_of`."""
        return units_of(self.renderer, self.cells, group_by)

    def prompts(self, units, *, reserve: int = 16, keep_ids: bool = True):
        """The units' prompts within the model's context (less ``reserve`` tokens for the
        answer): a :class:`~c2s.encoding.FittedPrompts`."""
        return fit_prompts(self.renderer, self.cells, units, self.model, reserve, keep_ids)


def prepare(
    data,
    model,
    *,
    task: str,
    n_genes: int | None = None,
    organism: str | None = None,
    strict: bool = False,
    check_task: bool = True,
    checks: Sequence[Callable[[Any], None]] = (),
    cells: dict | None = None,
    renderer_kw: dict | None = None,
) -> Prepared:
    """The verbs' shared preparation, in this order: the model (:func:`c2s.model.as_model`),
    genes per sentence and organism (the arguments, else the model's), whether the model was
    trained for ``task`` (with ``check_task``: a warning, an error when ``strict``), the
    verb's own ``checks`` of the model, the input's cells (``data``; None for a verb without
    input cells; ``cells`` holds ``split``, ``layer``, ``use_raw``, ``var_names``) and the
    renderer (``renderer_kw`` passed on). Changes nothing it is given."""
    from c2s.model import as_model

    m = as_model(model)
    k, org = settings(m, n_genes, organism)
    if check_task:
        check_trained_task(m, task, strict)
    for check in checks:
        check(m)
    cs = index = None
    if data is not None:
        cs, index = read_cells(data, m, n_genes=k, **(cells or {}))
    r = renderer(m, task, k, org, **(renderer_kw or {}))
    return Prepared(m, k, org, r, cs, index)


def check_inplace(data, inplace: bool) -> None:
    """Refuse ``inplace=True`` for input that cannot be written (before any work)."""
    if inplace and not is_anndata(data):
        raise C2SError(
            "A c2s dataset cannot be annotated in place: pass inplace=False to get the results "
            "(one row per cell; .to_frame() gives a DataFrame), or give an AnnData."
        )


def read_cells(
    data,
    model,
    *,
    n_genes: int,
    split: str | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    var_names: str | None = None,
    seed: int = 0,
):
    """Top-``n_genes`` sentences of the input's cells that express any gene, checked against
    the model's gene vocabulary (genes it never saw are counted in a warning), and the index
    of all the input's cells (cells with no expressed gene are named in a warning and left
    out; their results are missing). ``data`` may also be cells already ranked
    (:class:`~c2s.sentences.CellSentences`)."""
    cs = _sentences(data, n_genes, split, layer, use_raw, var_names, seed)
    if cs.n_cells == 0:
        raise C2SError("There are no cells to run the model on.")
    index = cs.obs.index
    empty = cs.lengths == 0
    if empty.all():
        raise C2SError("No cell of the input expresses any gene; there is nothing to run on.")
    if empty.any():
        ids = ", ".join(map(str, index[empty][:5]))
        warn(
            f"{int(empty.sum())} cells express no gene and are left out (their results are "
            f"missing): {ids}{' ...' if empty.sum() > 5 else ''}."
        )
        cs = cs.take(np.flatnonzero(~empty))
    _check_vocabulary(cs, model.config.genes)
    return cs, index


def _sentences(data, n_genes, split, layer, use_raw, var_names, seed):
    """The input's cells as top-``n_genes`` sentences (every cell, expressing or not)."""
    from c2s.sentences import CellSentences

    if isinstance(data, CellSentences):
        if split is not None or layer is not None or use_raw or var_names is not None:
            raise C2SError("split=, layer=, use_raw= and var_names= do not apply to ranked cells.")
        return data.top_genes(n_genes)
    if is_anndata(data):
        if split is not None:
            raise C2SError("split= applies to c2s datasets; subset the AnnData instead.")
        from c2s.sentences import from_anndata

        return from_anndata(
            data, layer=layer, use_raw=use_raw, var_names=var_names, n_genes=n_genes, seed=seed
        )
    if layer is not None or use_raw or var_names is not None:
        raise C2SError(
            "layer=, use_raw= and var_names= choose the expression and gene names of an "
            "AnnData; a c2s dataset was ranked when it was converted."
        )
    if isinstance(data, str | Path) and str(data).endswith(".h5ad"):
        raise C2SError(
            f"{str(data)!r} is an .h5ad file: read it first (anndata.read_h5ad), or "
            "convert it to a c2s dataset (c2s.io.convert)."
        )
    from c2s.io import as_dataset

    dataset = as_dataset(data)
    return dataset.sentences(split=split, n_genes=n_genes, values=False)


def _check_vocabulary(cs, known) -> None:
    """Genes of these sentences that the model never saw in training are a warning."""
    if not known:
        return
    names = cs.vocab.display_names.astype(str)
    used = np.zeros(len(names), dtype=bool)
    used[np.unique(cs.genes)] = True
    missing = used & ~np.isin(names, np.asarray(known, dtype=str))
    if missing.any():
        warn(
            f"{int(missing.sum())} of the {int(used.sum())} genes in these sentences are not in "
            f"the model's vocabulary (e.g. {', '.join(names[missing][:3])}); the model never "
            "saw them in training."
        )


def settings(model, n_genes, organism) -> tuple[int, str | None]:
    """Genes per sentence and organism: the arguments, else the model's c2s_config.json."""
    cfg = model.config
    if n_genes is not None and n_genes < 1:
        raise C2SError(f"n_genes must be at least 1, got {n_genes}.")
    k = n_genes or cfg.n_genes
    if not k:
        raise C2SError("Give n_genes (--n-genes): the model has no c2s_config.json saying it.")
    return int(k), organism or cfg.organism


def at_least(**values) -> None:
    """Each ``name=(value, low)`` with a value below ``low`` is an error (None is allowed)."""
    for name, (value, low) in values.items():
        if value is not None and value < low:
            raise C2SError(f"{name} must be at least {low}, got {value}.")


def check_sampling(temperature: float, top_k: int | None, top_p: float | None, seed: int) -> None:
    if not (math.isfinite(temperature) and temperature >= 0):
        raise C2SError(f"temperature must be 0 (greedy) or positive, got {temperature}.")
    if top_k is not None and top_k < 1:
        raise C2SError(f"top_k must be at least 1, got {top_k}.")
    if top_p is not None and not (0 < top_p <= 1):
        raise C2SError(f"top_p must lie in (0, 1], got {top_p}.")
    at_least(seed=(seed, 0))


def task_of(task):
    """The registered task named ``task`` (checked before any model is loaded), or ``task``
    itself when it is a :class:`~c2s.prompts.Task` already."""
    from c2s.prompts import get_task

    return get_task(task) if isinstance(task, str) else task


def untrusted(message: str, strict: bool) -> None:
    """A doubt about the model's answers: a warning, or an error when ``strict``."""
    if strict:
        raise C2SError(f"{message} (strict mode; pass strict=False / drop --strict to go on).")
    warn(message)


def check_trained_task(model, task: str, strict: bool) -> None:
    """A task the model was not trained for (per its c2s_config.json) is a warning, or an
    error when ``strict``; without a config nothing is known, so nothing is said."""
    trained = model.config.tasks
    if trained and task not in trained:
        untrusted(
            f"The model was not trained for {task!r} (it was trained for {', '.join(trained)}); "
            "its answers to that prompt mean little",
            strict,
        )


def check_labels(model, r, labels: list[str], strict: bool) -> None:
    """Labels the model never saw in training, or whose words its tokenizer does not know,
    are a warning (an error when ``strict``): their scores mean little."""
    known = set(model.config.labels.get(r.task.label or "", []))
    unseen = [lab for lab in labels if known and lab not in known]
    unk = model.tokenizer.unk_token_id
    unknown_words = []
    if unk is not None:
        ids = model.tokenizer([" " + r.answer(lab) for lab in labels])["input_ids"]
        unknown_words = [lab for lab, t in zip(labels, ids, strict=True) if unk in t]
    parts = []
    if unseen:
        parts.append(f"never seen in training: {', '.join(map(repr, unseen[:5]))}")
    if unknown_words:
        parts.append(
            f"with words the tokenizer does not know: {', '.join(map(repr, unknown_words[:5]))}"
        )
    if parts:
        untrusted(f"Candidate labels the model cannot score fairly ({'; '.join(parts)})", strict)


def renderer(model, task, n_genes, organism, profile=None, **kw):
    from c2s.prompts import Renderer

    constants = {"organism": organism} if organism else {}
    profile = profile or model.config.profile
    return Renderer(task, profile=profile, n_genes=n_genes, constants=constants, **kw)


def fit_prompts(r, cs, units, model, reserve: int = 16, keep_ids: bool = True):
    """Prompts for units (tuples of cell rows) within the model's context less ``reserve``
    tokens for the answer (:func:`c2s.encoding.fit_prompts`; no limit when the model states
    no context); a prompt that lost genes to fit is warned about. Token ids are kept with
    ``keep_ids`` (None when the model states no context)."""
    from c2s.encoding import fit_prompts as fit

    context = getattr(model.model.config, "max_position_embeddings", None)
    limit = context - reserve if context else None
    try:
        too_long = f"the model's {context} tokens"
        fitted = fit(r, cs, units, model.tokenizer, limit, keep_ids=keep_ids, too_long=too_long)
    except C2SError as e:
        if "organism" in str(e):
            raise C2SError(
                f"{e} The model's c2s_config.json names no organism either: pass organism= "
                "(--organism)."
            ) from None
        raise
    if fitted.shortened:
        warn(
            f"{len(fitted.shortened)} prompts were longer than the model's context ({context} "
            f"tokens, {reserve} kept for the answer) and lost genes from the end of their "
            "sentences."
        )
    return fitted


def label_set(model, task, labels) -> list[str]:
    """Candidate labels: ``labels``, else those the model saw in training (no repeats)."""
    if labels is not None:
        out = [str(x) for x in labels]
    else:
        out = list(model.config.labels.get(task.label, []))
    return list(dict.fromkeys(out))


def units_of(renderer, cs, group_by) -> list[tuple[int, ...]]:
    """The prompts' cells: one cell each, or groups for multi-cell tasks (by ``group_by``
    columns, else consecutive runs of ``max_cells`` cells). Every cell belongs to some group
    (groups of one cell are allowed); ``renderer`` is not changed."""
    if renderer.task.kind == "single":
        return [(i,) for i in range(cs.n_cells)]
    if renderer.task.kind != "multi":
        raise C2SError(f"Task {renderer.task.name!r} pairs cells; use perturb().")
    grouping = copy.copy(renderer)
    grouping.min_cells = 1  # at inference every cell belongs to some group
    if group_by:
        grouping.group_by = list(group_by)
    groups = grouping.groups(cs, np.arange(cs.n_cells)) if grouping.group_by else None
    if groups is None:  # no grouping key: consecutive runs of max_cells cells
        groups = [
            np.arange(a, min(a + renderer.max_cells, cs.n_cells))
            for a in range(0, cs.n_cells, renderer.max_cells)
        ]
    return [tuple(int(x) for x in g) for g in groups]
