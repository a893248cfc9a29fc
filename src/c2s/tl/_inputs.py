"""What every verb does before the model runs: load the model, resolve the input once (an
AnnData, or a c2s dataset or one split of it) into top-k sentences, and build prompts that
fit the model's context.

The contract shared by the verbs (tested over their signatures):

- ``data`` is an AnnData (ranked here; ``layer``, ``use_raw`` and ``var_names`` choose its
  expression and gene names) or a c2s dataset (a directory or
  :class:`~c2s.io.C2SDataset`, ranked already; ``split`` picks one split);
- ``layer`` always means an AnnData layer, ``hidden_layer`` a layer of the model;
- a verb that annotates cells writes into the AnnData and returns ``None`` when
  ``inplace=True`` (the default), and writes nothing and returns the results when
  ``inplace=False``; a dataset cannot be written, so it needs ``inplace=False``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from c2s._errors import C2SError


def load_model(model, device="auto"):
    """A :class:`~c2s.model.C2SModel`, loaded when given as a path or hub id."""
    from c2s.model import C2SModel

    return model if isinstance(model, C2SModel) else C2SModel.from_pretrained(model, device=device)


def is_anndata(data) -> bool:
    return type(data).__name__ == "AnnData"


def check_inplace(data, inplace: bool) -> None:
    """Refuse ``inplace=True`` for input that cannot be written (before any work)."""
    if inplace and not is_anndata(data):
        raise C2SError(
            "A c2s dataset cannot be annotated in place: pass inplace=False to get the results "
            "as a DataFrame (one row per cell), or give an AnnData."
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
    from c2s.io import C2SDataset
    from c2s.sentences import CellSentences

    if isinstance(data, CellSentences):
        if split is not None or layer is not None or use_raw or var_names is not None:
            raise C2SError("split=, layer=, use_raw= and var_names= do not apply to ranked cells.")
        cs = data.top_k(n_genes)
    elif is_anndata(data):
        if split is not None:
            raise C2SError("split= applies to c2s datasets; subset the AnnData instead.")
        from c2s.sentences import from_anndata

        cs = from_anndata(
            data, layer=layer, use_raw=use_raw, var_names=var_names, top_k=n_genes, seed=seed
        )
    else:
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
        ds = data if isinstance(data, C2SDataset) else C2SDataset(data)
        cs = ds.sentences(split=split, top_k=n_genes, values=False)
    if cs.n_cells == 0:
        raise C2SError("There are no cells to run the model on.")
    index = cs.obs.index
    empty = cs.lengths == 0
    if empty.all():
        raise C2SError("No cell of the input expresses any gene; there is nothing to run on.")
    if empty.any():
        ids = ", ".join(map(str, index[empty][:5]))
        warnings.warn(
            f"{int(empty.sum())} cells express no gene and are left out (their results are "
            f"missing): {ids}{' ...' if empty.sum() > 5 else ''}.",
            stacklevel=3,
        )
        cs = cs.take(np.flatnonzero(~empty))
    known = model.config.genes
    if known:
        names = cs.vocab.display_names.astype(str)
        used = np.zeros(len(names), dtype=bool)
        used[np.unique(cs.genes)] = True
        missing = used & ~np.isin(names, np.asarray(known, dtype=str))
        if missing.any():
            warnings.warn(
                f"{int(missing.sum())} of the {int(used.sum())} genes in these sentences are not in "
                f"the model's vocabulary (e.g. {', '.join(names[missing][:3])}); the model never "
                "saw them in training.",
                stacklevel=3,
            )
    return cs, index


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


def _untrusted(message: str, strict: bool) -> None:
    if strict:
        raise C2SError(f"{message} (strict mode; pass strict=False / drop --strict to go on).")
    warnings.warn(message, stacklevel=4)


def check_task(model, task: str, strict: bool) -> None:
    """A task the model was not trained for (per its c2s_config.json) is a warning, or an
    error when ``strict``; without a config nothing is known, so nothing is said."""
    trained = model.config.tasks
    if trained and task not in trained:
        _untrusted(
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
        _untrusted(f"Candidate labels the model cannot score fairly ({'; '.join(parts)})", strict)


def renderer(model, task, k, organism, profile=None, **kw):
    from c2s.prompts import Renderer

    constants = {"organism": organism} if organism else {}
    return Renderer(
        task, profile=profile or model.config.profile, n_genes=k, constants=constants, **kw
    )


def fit_prompts(r, cs, units, model, reserve: int = 16, keep_ids: bool = True):
    """Prompts for units (tuples of cell rows), the genes per sentence each uses, and their
    token ids (None when the model states no context, or without ``keep_ids``). A prompt
    longer than the model's context (less ``reserve`` tokens for the answer) is rendered
    again with fewer genes (warned). Prompts are tokenized 1,024 at a time."""
    try:
        prompts = [r.prompt(cs, u) for u in units]
    except C2SError as e:
        if "organism" in str(e):
            raise C2SError(
                f"{e} The model's c2s_config.json names no organism either: pass organism= "
                "(--organism)."
            ) from None
        raise
    ks = [r.n_genes] * len(prompts)
    context = getattr(model.model.config, "max_position_embeddings", None)
    if not context:
        return prompts, ks, None
    from c2s.encoding import prompt_within

    limit = context - reserve
    ids, long = [], []
    for c0 in range(0, len(prompts), 1024):
        chunk = model.tokenizer(prompts[c0 : c0 + 1024])["input_ids"]
        long += [c0 + j for j, x in enumerate(chunk) if len(x) > limit]
        if keep_ids:
            ids += chunk
    for i in long:
        try:
            prompts[i], ks[i] = prompt_within(r, cs, units[i], model.tokenizer, limit)
        except C2SError:
            raise C2SError(
                f"Even one gene per cell does not fit the model's {context} tokens."
            ) from None
        if keep_ids:
            ids[i] = model.tokenizer(prompts[i])["input_ids"]
    if long:
        warnings.warn(
            f"{len(long)} prompts were longer than the model's context ({context} tokens, "
            f"{reserve} kept for the answer) and lost genes from the end of their sentences.",
            stacklevel=3,
        )
    return prompts, ks, ids if keep_ids else None


def sentence_span(prompt: str, cs, i: int, k: int) -> tuple[str, int]:
    """Cell ``i``'s top-``k`` sentence and where it starts in its prompt."""
    from c2s.prompts import sentence_texts

    sentence = sentence_texts(cs, [i], k)[0]
    return sentence, prompt.find(sentence)


def label_set(model, task, labels) -> list[str]:
    """Candidate labels: ``labels``, else those the model saw in training (no repeats)."""
    if labels is not None:
        out = [str(x) for x in labels]
    else:
        out = list(model.config.labels.get(task.label, []))
    return list(dict.fromkeys(out))


def units_of(r, cs, group_by) -> list[tuple[int, ...]]:
    """The prompts' cells: one cell each, or groups for multi-cell tasks (by ``group_by``
    columns, else consecutive runs of ``max_cells`` cells)."""
    r.min_cells = 1  # at inference every cell belongs to some group
    if r.task.kind == "single":
        return [(i,) for i in range(cs.n_cells)]
    if r.task.kind == "multi":
        if group_by:
            r.group_by = list(group_by)
        elif r.group_by is None:
            r.group_by = []
        groups = r.groups(cs, np.arange(cs.n_cells)) if r.group_by else None
        if groups is None:  # no grouping key: consecutive runs of max_cells cells
            groups = [
                np.arange(a, min(a + r.max_cells, cs.n_cells))
                for a in range(0, cs.n_cells, r.max_cells)
            ]
        return [tuple(int(x) for x in g) for g in groups]
    raise C2SError(f"Task {r.task.name!r} pairs cells; use perturb().")
