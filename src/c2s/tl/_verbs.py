"""AnnData verbs: predict, embed, generate, perturb and describe cells with a C2S model.

Each verb takes an AnnData (ranked here, with the model's genes per sentence) or a c2s
dataset (directory or :class:`~c2s.io.C2SDataset`, optionally one ``split``). With an AnnData
the results are written into it (scanpy style) and ``None`` is returned; with a dataset a
``pandas.DataFrame`` (one row per cell) is returned.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from c2s._errors import C2SError
from c2s._logging import get_logger

log = get_logger(__name__)

MODES = ("auto", "score", "constrained", "free")


# -- inputs ---------------------------------------------------------------------------------------
def _load_model(model, device="auto"):
    from c2s.model import C2SModel

    return model if isinstance(model, C2SModel) else C2SModel.from_pretrained(model, device=device)


def _is_anndata(data) -> bool:
    return type(data).__name__ == "AnnData"


def cells_of(
    data, model, *, n_genes: int, split: str | None = None, layer=None, use_raw=False, seed=0
):
    """Top-``n_genes`` sentences of the input, checked against the model's gene vocabulary."""
    from c2s.io import C2SDataset

    if _is_anndata(data):
        if split is not None:
            raise C2SError("split= applies to c2s datasets; subset the AnnData instead.")
        from c2s.sentences import from_anndata

        cs = from_anndata(data, layer=layer, use_raw=use_raw, top_k=n_genes, seed=seed)
    else:
        ds = data if isinstance(data, C2SDataset) else C2SDataset(data)
        cs = ds.sentences(split=split, top_k=n_genes, values=False)
    if cs.n_cells == 0:
        raise C2SError("There are no cells to run the model on.")
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
    return cs


def _settings(model, n_genes, organism):
    cfg = model.config
    k = n_genes or cfg.n_genes
    if not k:
        raise C2SError("Give n_genes (--n-genes): the model has no c2s_config.json saying it.")
    return int(k), organism or cfg.organism


def _renderer(model, task, k, organism, profile=None, **kw):
    from c2s.prompts import Renderer

    constants = {"organism": organism} if organism else {}
    return Renderer(
        task, profile=profile or model.config.profile, n_genes=k, constants=constants, **kw
    )


def _prompts(r, cs, units, model, reserve: int = 16):
    """Prompts for units (tuples of cell rows), the genes per sentence each uses, and their
    token ids (None when the model states no context). A prompt longer than the model's
    context (less ``reserve`` tokens for the answer) is rendered again with fewer genes
    (warned)."""
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
    limit = context - reserve
    ids = model.tokenizer(prompts)["input_ids"]
    long = [i for i, x in enumerate(ids) if len(x) > limit]
    for i in long:
        lo, hi, best = 1, r.n_genes - 1, None
        while lo <= hi:
            mid = (lo + hi) // 2
            p = r.prompt(cs, units[i], n_genes=mid)
            if len(model.tokenizer(p)["input_ids"]) <= limit:
                best, lo = p, mid + 1
            else:
                hi = mid - 1
        if best is None:
            raise C2SError(f"Even one gene per cell does not fit the model's {context} tokens.")
        prompts[i], ks[i] = best, lo - 1
        ids[i] = model.tokenizer(best)["input_ids"]
    if long:
        warnings.warn(
            f"{len(long)} prompts were longer than the model's context ({context} tokens, "
            f"{reserve} kept for the answer) and lost genes from the end of their sentences.",
            stacklevel=3,
        )
    return prompts, ks, ids


def _sentence_span(prompt: str, cs, i: int, k: int) -> tuple[str, int]:
    """Cell ``i``'s top-``k`` sentence and where it starts in its prompt."""
    from c2s.prompts import sentence_texts

    sentence = sentence_texts(cs, [i], k)[0]
    return sentence, prompt.find(sentence)


def _label_set(model, task, labels):
    if labels is not None:
        out = [str(x) for x in labels]
    else:
        out = list(model.config.labels.get(task.label, []))
    return list(dict.fromkeys(out))


def _units(r, cs, group_by):
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


# -- predict ---------------------------------------------------------------------------------------
def predict(
    data,
    model,
    *,
    task: str = "cell_type_prediction",
    mode: str = "auto",
    labels: Sequence[str] | None = None,
    key_added: str = "c2s_prediction",
    n_genes: int | None = None,
    organism: str | None = None,
    split: str | None = None,
    group_by: Sequence[str] | None = None,
    batch_size: int = 8,
    max_new_tokens: int | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    progress_bar: bool | None = None,
):
    """Predict a label per cell (or per group of cells for multi-cell tasks).

    Parameters
    ----------
    mode
        ``"score"``: the log-likelihood of every candidate label, argmax and probabilities
        (the prompt's key/value cache is shared across candidates); ``"constrained"``: greedy
        decoding restricted to the candidates; ``"free"``: plain greedy decoding with a short
        token budget. ``"auto"``: score when a label set is known (``labels`` or the model's
        ``c2s_config.json``), else free.
    labels
        Candidate labels (default: those the model saw in training).

    Writes (AnnData input)
    ----------------------
    ``obs[key_added]`` (the label), ``obs[key_added + "_probability"]`` (score mode),
    ``obs[key_added + "_answer"]`` (the raw answer text in free mode),
    ``obsm[key_added + "_probabilities"]`` (cells x labels, score mode) and
    ``uns[key_added]`` (mode, labels, task, seconds).
    """
    from c2s.model._infer import decode_constrained, generate_free, score_answers

    m = _load_model(model)
    k, org = _settings(m, n_genes, organism)
    if mode not in MODES:
        raise C2SError(f"mode must be one of {MODES}, not {mode!r}.")
    cs = cells_of(data, m, n_genes=k, split=split, layer=layer, use_raw=use_raw)
    r = _renderer(m, task, k, org)
    if r.task.answer != "label":
        raise C2SError(f"Task {task!r} does not answer with a label; predict needs one that does.")
    cands = _label_set(m, r.task, labels)
    if mode == "auto":
        mode = "score" if cands else "free"
    if mode in ("score", "constrained") and not cands:
        raise C2SError(
            f"No candidate labels for {r.task.label!r}: the model's c2s_config.json lists none. "
            "Pass labels= (--labels A B ...) or use mode='free'."
        )
    units = _units(r, cs, group_by)
    prompts, _, ids = _prompts(r, cs, units, m, reserve=max_new_tokens or 16)
    t0 = time.perf_counter()
    probs = answers = None
    kw = {"batch_size": batch_size, "progress_bar": progress_bar, "prompt_ids": ids}
    if mode == "score":
        ll = score_answers(m, prompts, [r.answer(c) for c in cands], **kw)
        z = ll - ll.max(1, keepdims=True)
        probs = np.exp(z)
        probs /= probs.sum(1, keepdims=True)
        pred = [cands[j] for j in ll.argmax(1)]
    elif mode == "constrained":
        idx = decode_constrained(m, prompts, [r.answer(c) for c in cands], **kw)
        pred = [cands[j] for j in idx]
    else:
        budget = max_new_tokens or (
            max(len(m.tokenizer(" " + r.answer(c))["input_ids"]) for c in cands) + 4
            if cands
            else 32
        )
        answers = generate_free(
            m, prompts, max_new_tokens=budget, batch_size=batch_size, progress_bar=progress_bar
        )
        pred = [r.task.parse(a) for a in answers]
    seconds = time.perf_counter() - t0
    # unit results -> cells
    cell_unit = np.full(cs.n_cells, -1)
    for u, cells in enumerate(units):
        cell_unit[list(cells)] = u
    have = cell_unit >= 0
    col = np.array([pred[u] if u >= 0 else None for u in cell_unit], dtype=object)
    frame = pd.DataFrame({key_added: col}, index=cs.obs.index)
    if probs is not None:
        frame[key_added + "_probability"] = np.where(have, probs.max(1)[cell_unit], np.nan)
    if answers is not None:
        frame[key_added + "_answer"] = [answers[u] if u >= 0 else None for u in cell_unit]
    info = {
        "task": task,
        "mode": mode,
        "labels": cands,
        "n_genes": k,
        "seconds": seconds,
        "n_prompts": len(prompts),
    }
    prob_frame = None
    if probs is not None:
        prob_frame = pd.DataFrame(
            probs[np.maximum(cell_unit, 0)], index=cs.obs.index, columns=cands
        )
        prob_frame[~have] = np.nan
    if _is_anndata(data):
        for c in frame.columns:
            data.obs[c] = frame[c].to_numpy()
        if prob_frame is not None:
            data.obsm[key_added + "_probabilities"] = prob_frame.set_axis(data.obs_names, axis=0)
        data.uns[key_added] = info
        return None
    if prob_frame is not None:
        frame = pd.concat([frame, prob_frame.add_prefix("p_")], axis=1)
    frame.attrs["c2s"] = info
    return frame


# -- embed -------------------------------------------------------------------------------------------
def embed(
    data,
    model,
    *,
    key_added: str = "X_c2s",
    pool: str = "genes",
    layer: int = -1,
    task: str = "cell_type_prediction",
    n_genes: int | None = None,
    organism: str | None = None,
    split: str | None = None,
    batch_size: int = 8,
    use_raw: bool = False,
    progress_bar: bool | None = None,
):
    """Cell embeddings: hidden states of ``layer`` pooled over the cell-sentence tokens of the
    ``task`` prompt (``pool="genes"``), over the whole prompt (``"prompt"``) or at its last
    token (``"last"``). Padding is never pooled, so a cell's embedding does not depend on the
    cells batched with it.

    Writes ``obsm[key_added]`` (AnnData input) or returns a DataFrame (cells x dimensions).
    """
    from c2s.model._infer import embed_prompts

    m = _load_model(model)
    k, org = _settings(m, n_genes, organism)
    cs = cells_of(data, m, n_genes=k, split=split, use_raw=use_raw)
    r = _renderer(m, task, k, org)
    if r.task.kind != "single":
        raise C2SError("embed uses a single-cell prompt task (e.g. cell_type_prediction).")
    prompts, ks, _ = _prompts(r, cs, [(i,) for i in range(cs.n_cells)], m, reserve=0)
    spans = []
    for i, p in enumerate(prompts):
        sentence, start = _sentence_span(p, cs, i, ks[i])
        spans.append((start, start + len(sentence)))
    X = embed_prompts(
        m, prompts, spans, pool=pool, layer=layer, batch_size=batch_size, progress_bar=progress_bar
    )
    if _is_anndata(data):
        data.obsm[key_added] = X
        data.uns[key_added] = {"pool": pool, "layer": layer, "task": task, "n_genes": k}
        return None
    return pd.DataFrame(X, index=cs.obs.index, columns=[f"c2s_{j}" for j in range(X.shape[1])])


# -- generate ----------------------------------------------------------------------------------------
def _genes(m, genes) -> list[str]:
    genes = list(genes) if genes is not None else m.config.genes
    if not genes:
        raise C2SError(
            "The model's c2s_config.json lists no genes; pass genes= with the gene names it "
            "may generate (e.g. the data's upper-cased var names)."
        )
    return genes


def _layout(m, r, prompts: list[str], genes: list[str], n_cells: int = 1):
    """The generation layout of ``prompts`` (renderer ``r``'s answer format), with the gene
    tries cached on the model per gene list and context."""
    from c2s.model._generate import CellLayout, GeneTrie, cell_layout
    from c2s.prompts import multi_cell_text

    key = hash(tuple(genes))
    cache = getattr(m, "_gene_tries", None)
    if cache is None or cache[0] != key:
        cache = m._gene_tries = (key, {})

    def trie_for(anchor: str, sep: str) -> GeneTrie:
        if (anchor, sep) not in cache[1]:
            cache[1][(anchor, sep)] = GeneTrie(m.tokenizer, genes, anchor=anchor, sep=sep)
        return cache[1][(anchor, sep)]

    if r.task.kind == "multi":
        answer = lambda sents: r.answer(multi_cell_text(sents))  # noqa: E731
    else:
        answer = lambda sents: r.answer(sents[0])  # noqa: E731
    try:
        return cell_layout(m.tokenizer, prompts, answer, genes, n_cells, trie_for)
    except C2SError as e:
        if n_cells > 1:
            raise
        # A tokenizer that merges genes with the text after them (e.g. "GENE." as one token):
        # one cell per prompt still works gene by gene, with EOS closing the last gene.
        log.debug("generation layout: %s; using the prompt's tokens and EOS", e)
        return CellLayout.plain(m.tokenizer, prompts, trie_for("Cell sentence:", " "))


def _to_anndata(m, genes, sentences: list[list[int]], obs: pd.DataFrame, inverse):
    """Generated sentences as an AnnData with reconstructed expression."""
    from c2s.inverse import reconstruct
    from c2s.inverse._models import InverseModel
    from c2s.sentences import CellSentences, Vocab

    vocab = Vocab.from_names(genes)
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sentences])]).astype(np.int64)
    flat = (
        np.concatenate([np.asarray(s, dtype=np.int32) for s in sentences])
        if sentences
        else np.zeros(0, np.int32)
    )
    obs = obs.copy()
    obs["c2s_sentence"] = [" ".join(genes[g] for g in s) for s in sentences]
    obs["c2s_n_genes"] = [len(s) for s in sentences]
    cs = CellSentences(flat, offsets, vocab, obs)
    spec = inverse if inverse is not None else m.config.inverse
    if spec is None:
        raise C2SError(
            "No inverse model to turn ranks into expression: the model's c2s_config.json has "
            "none. Pass inverse= (a fitted model, or a dataset whose inverse to use)."
        )
    inv = (
        spec if hasattr(spec, "predict_sentences") else InverseModel.from_dict(_inverse_dict(spec))
    )
    return reconstruct(cs, inv, clip_negative=True)


def _inverse_dict(spec):
    from c2s.io import C2SDataset

    if not isinstance(spec, dict):
        ds = spec if isinstance(spec, C2SDataset) else C2SDataset(spec)
        if not ds.meta.get("inverse"):
            raise C2SError(f"{ds.path} has no fitted inverse model; run `c2s inverse fit` on it.")
        spec = ds.meta["inverse"]
    return spec.get("params", spec)  # a stored fit (dataset metadata) or a model's own dict


def generate(
    model,
    labels: Sequence[str] | dict[str, int],
    *,
    n_per_label: int = 1,
    task: str = "cell_type_generation",
    n_genes: int | None = None,
    n_cells: int = 5,
    organism: str | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    genes: Sequence[str] | None = None,
    inverse=None,
    batch_size: int = 8,
    progress_bar: bool | None = None,
):
    """Generate cells conditioned on labels: cell types (``cell_type_generation``), or tissues
    with a multi-cell task (``tissue_conditional_generation``: ``n_cells`` cells per prompt).

    Decoding is constrained to the model's genes (``genes`` to override) that the cell has
    not used yet and stops at exactly ``n_genes`` genes; a multi-cell answer's ``Cell i:``
    headers are forced, so its tokens are exactly those of the training format. ``labels`` is
    a list (each entry ``n_per_label`` times; repeats add up) or ``{label: count}``; for a
    multi-cell task a count is a number of groups of ``n_cells`` cells.

    Returns
    -------
    AnnData, one row per generated cell: ``X`` reconstructed with the model's inverse model
    (or ``inverse``: an InverseModel, its dict, or a dataset with a fitted one),
    ``obs[label column]`` (the condition), ``obs["c2s_sentence"]``, ``obs["c2s_n_genes"]``
    (multi-cell tasks also ``obs["c2s_group"]`` and ``obs["c2s_cell"]``, the cell's number in
    its group from 1); ``uns["c2s_generate"]``.
    """
    from c2s.model._generate import generate_cells

    m = _load_model(model)
    k, org = _settings(m, n_genes, organism)
    r = _renderer(m, task, k, org)
    if r.task.answer != "cells" or r.task.kind not in ("single", "multi"):
        raise C2SError(
            f"Task {task!r} does not generate cells from a label; use cell_type_generation or "
            "tissue_conditional_generation."
        )
    multi = r.task.kind == "multi"
    pairs = labels.items() if isinstance(labels, dict) else [(lab, n_per_label) for lab in labels]
    conds = [lab for lab, n in pairs for _ in range(int(n))]  # a repeated label counts twice
    if not conds:
        raise C2SError("No labels to generate cells for.")
    col = r.task.label or "label"
    extra = {"num_cells": n_cells} if multi else {}
    prompts = [r.prompt(values={col: lab, **extra}) for lab in conds]
    genes = _genes(m, genes)
    layout = _layout(m, r, prompts, genes, n_cells if multi else 1)
    t0 = time.perf_counter()
    groups = generate_cells(
        m, layout, k, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
        batch_size=batch_size, progress_bar=progress_bar,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    sents = [cell for cells in groups for cell in cells]
    per = layout.n_cells
    obs = pd.DataFrame(
        {col: [lab for lab in conds for _ in range(per)]},
        index=[f"c2s_gen_{i}" for i in range(len(sents))],
    )
    if multi:
        obs["c2s_group"] = np.repeat(np.arange(len(conds)), per)
        obs["c2s_cell"] = np.tile(np.arange(1, per + 1), len(conds))
    out = _to_anndata(m, genes, sents, obs, inverse)
    out.uns["c2s_generate"] = {
        "task": task, "n_genes": k, "n_cells": per, "temperature": temperature, "top_k": top_k,
        "top_p": top_p, "seed": seed, "seconds": seconds,
    }  # fmt: skip
    return out


def perturb(
    data,
    model,
    perturbations: Sequence[str],
    *,
    n_genes: int | None = None,
    split: str | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    genes: Sequence[str] | None = None,
    inverse=None,
    batch_size: int = 8,
    use_raw: bool = False,
    progress_bar: bool | None = None,
):
    """Predict perturbed cells: every control cell of ``data`` under every perturbation.

    Returns an AnnData like :func:`generate`, with ``obs["control_cell"]`` and
    ``obs["perturbation"]``.
    """
    from c2s.model._generate import generate_cells
    from c2s.prompts import sentence_texts

    m = _load_model(model)
    k, _ = _settings(m, n_genes, None)
    if not perturbations:
        raise C2SError("Name at least one perturbation.")
    cs = cells_of(data, m, n_genes=k, split=split, use_raw=use_raw)
    r = _renderer(m, "perturbation_prediction", k, None)
    prompts, ctrl, pert = [], [], []
    for i in range(cs.n_cells):
        s = sentence_texts(cs, [i], k)[0]
        for p in perturbations:
            prompts.append(r.prompt(values={"control_cell_sentence": s, "perturbation_name": p}))
            ctrl.append(str(cs.obs.index[i]))
            pert.append(str(p))
    genes = _genes(m, genes)
    groups = generate_cells(
        m, _layout(m, r, prompts, genes), k, temperature=temperature, top_k=top_k, top_p=top_p,
        seed=seed, batch_size=batch_size, progress_bar=progress_bar,
    )  # fmt: skip
    sents = [cells[0] for cells in groups]
    obs = pd.DataFrame(
        {"control_cell": ctrl, "perturbation": pert},
        index=[f"c2s_pert_{i}" for i in range(len(ctrl))],
    )
    return _to_anndata(m, genes, sents, obs, inverse)


def describe(
    data,
    model,
    *,
    group_by: Sequence[str] | None = None,
    n_genes: int | None = None,
    organism: str | None = None,
    split: str | None = None,
    max_cells: int = 20,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    seed: int = 0,
    batch_size: int = 4,
    use_raw: bool = False,
    progress_bar: bool | None = None,
    backend: str = "hf",
) -> pd.DataFrame:
    """A natural-language summary per group of cells (``group_by`` obs columns; without them,
    runs of ``max_cells`` cells). Returns one row per group: its cells and the text.
    ``backend="vllm"`` decodes with vLLM on a GPU."""
    from c2s.model._infer import generate_free

    m = _load_model(model)
    k, org = _settings(m, n_genes, organism)
    cs = cells_of(data, m, n_genes=k, split=split, use_raw=use_raw)
    r = _renderer(m, "natural_language_interpretation", k, org, max_cells=max_cells, min_cells=1)
    units = _units(r, cs, group_by)
    prompts, _, _ = _prompts(r, cs, units, m, reserve=max_new_tokens)
    texts = generate_free(
        m, prompts, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
        batch_size=batch_size, progress_bar=progress_bar, backend=backend,
    )  # fmt: skip
    rows = []
    for u, text in zip(units, texts, strict=True):
        row = {"cells": [str(cs.obs.index[i]) for i in u], "description": r.task.parse(text)}
        for c in group_by or []:
            row[c] = cs.obs.iloc[u[0]][c]
        rows.append(row)
    return pd.DataFrame(rows)


def attention(
    data,
    model,
    *,
    cells: Sequence[int] | None = None,
    layer: int = -1,
    n_genes: int | None = None,
    organism: str | None = None,
    task: str = "cell_type_prediction",
    split: str | None = None,
    use_raw: bool = False,
) -> dict[str, pd.DataFrame]:
    """Gene-by-gene attention of single cells, from one layer, aggregated from tokens to
    genes (rows: attending gene, columns: attended gene; mean over heads and over the
    attending gene's tokens, sum over the attended gene's tokens).

    ``cells``: row indices (default: the first 10). Returns ``{cell id: DataFrame}``.
    """
    from c2s.model._infer import gene_attention

    m = _load_model(model)
    k, org = _settings(m, n_genes, organism)
    cs = cells_of(data, m, n_genes=k, split=split, use_raw=use_raw)
    r = _renderer(m, task, k, org)
    rows = list(range(min(10, cs.n_cells))) if cells is None else [int(i) for i in cells]
    out = {}
    for i in rows:
        prompt, ks, _ = _prompts(r, cs, [(i,)], m, reserve=0)
        sentence, start = _sentence_span(prompt[0], cs, i, ks[0])
        spans, genes, pos = [], sentence.split(" "), start
        for g in genes:
            spans.append((pos, pos + len(g)))
            pos += len(g) + 1
        A = gene_attention(m, prompt[0], spans, layer=layer)
        out[str(cs.obs.index[i])] = pd.DataFrame(A, index=genes, columns=genes)
    return out
