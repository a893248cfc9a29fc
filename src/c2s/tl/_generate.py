"""``generate`` (cells from labels) and ``perturb`` (perturbed cells from control cells):
gene-constrained decoding, then expression from the inverse transform."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from c2s._errors import C2SError
from c2s.prompts import names_no_perturbation
from c2s.tl._inputs import (
    at_least,
    check_labels,
    check_sampling,
    prepare,
    task_of,
    untrusted,
    warn,
)


def _genes(m, genes) -> list[str]:
    genes = list(genes) if genes is not None else m.config.genes
    if not genes:
        raise C2SError(
            "The model's c2s_config.json lists no genes; pass genes= with the gene names it "
            "may generate (e.g. the data's upper-cased var names)."
        )
    return genes


def _layout(model, renderer, prompts: list[str], genes: list[str], n_cells: int = 1):
    """The generation layout of ``prompts`` (the renderer's answer format), with gene
    tries from the model's own cache."""
    from c2s.model import CellLayout, cell_layout
    from c2s.prompts import multi_cell_text

    def trie_for(anchor: str, sep: str):
        return model.gene_trie(genes, anchor=anchor, sep=sep)

    if renderer.task.kind == "multi":
        answer = lambda sents: renderer.answer(multi_cell_text(sents))  # noqa: E731
    else:
        answer = lambda sents: renderer.answer(sents[0])  # noqa: E731
    try:
        return cell_layout(model.tokenizer, prompts, answer, genes, n_cells, trie_for)
    except C2SError as e:
        if n_cells > 1:
            raise
        # A tokenizer that merges genes with the text after them (e.g. "GENE." as one token):
        # one cell per prompt still works gene by gene, with EOS closing the last gene.
        warn(
            f"This tokenizer does not give the training format's tokens gene by gene ({e}); "
            "each cell's last gene is closed by EOS instead of the text that follows it in "
            "training."
        )
        return CellLayout.plain(model.tokenizer, prompts, trie_for("Cell sentence:", " "))


def _to_anndata(model, genes, sentences: list[list[int]], obs: pd.DataFrame, inverse):
    """Generated sentences as an AnnData with reconstructed expression."""
    from c2s.inverse import load_inverse, reconstruct
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
    spec = inverse if inverse is not None else model.config.inverse
    if spec is None:
        raise C2SError(
            "No inverse model to turn ranks into expression: the model's c2s_config.json has "
            "none. Pass inverse= (a fitted model, or a dataset whose inverse to use)."
        )
    return reconstruct(cs, load_inverse(spec), clip_negative=True)


def generate(
    model,
    labels: Sequence[str] | dict[str, int],
    *,
    n_per_label: int = 10,
    task: str = "cell_type_generation",
    n_genes: int | None = None,
    n_cells: int = 5,
    organism: str | None = None,
    temperature: float = 0.7,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    genes: Sequence[str] | None = None,
    inverse=None,
    batch_size: int = 8,
    strict: bool = False,
    progress_bar: bool | None = None,
):
    """Generate cells conditioned on labels: cell types (``cell_type_generation``), or tissues
    with a multi-cell task (``tissue_conditional_generation``: ``n_cells`` cells per prompt).

    Sampling: temperature 0.7 by default, chosen on PBMC's validation cells (closer to the
    real cells by MMD than 1.0, and recognized as their type more often; BENCHMARKS.md,
    science section); lower temperatures give more typical, less varied cells.

    Decoding is constrained to the model's genes (``genes`` to override) that the cell has
    not used yet and stops at exactly ``n_genes`` genes; a multi-cell answer's ``Cell i:``
    headers are forced, so its tokens are exactly those of the training format. ``labels`` is
    a list (each entry ``n_per_label`` times; repeats add up) or ``{label: count}``; for a
    multi-cell task a count is a number of groups of ``n_cells`` cells. A task the model was
    not trained for, or a label it never saw, is a warning (an error with ``strict``).

    Returns
    -------
    A new AnnData, one row per generated cell: ``X`` reconstructed with the model's inverse
    model (or ``inverse``: an InverseModel, its dict, or a dataset with a fitted one),
    ``obs[label column]`` (the condition), ``obs["c2s_sentence"]``, ``obs["c2s_n_genes"]``
    (multi-cell tasks also ``obs["c2s_group"]`` and ``obs["c2s_cell"]``, the cell's number in
    its group from 1) and ``uns["c2s_generate"]`` (task, n_genes, n_cells, sampling options,
    seconds).
    """
    check_sampling(temperature, top_k, top_p, seed)
    at_least(n_per_label=(n_per_label, 1), n_cells=(n_cells, 1), batch_size=(batch_size, 1))
    multi = _generation_task(task).kind == "multi"
    conds = _conditions(labels, n_per_label)
    prep = prepare(None, model, task=task, n_genes=n_genes, organism=organism, strict=strict)
    check_labels(prep.model, prep.renderer, list(dict.fromkeys(map(str, conds))), strict)
    col = prep.renderer.task.label or "label"
    extra = {"num_cells": n_cells} if multi else {}
    prompts = [prep.renderer.prompt(values={col: lab, **extra}) for lab in conds]
    genes = _genes(prep.model, genes)
    layout = _layout(prep.model, prep.renderer, prompts, genes, n_cells if multi else 1)
    sampling = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}
    t0 = time.perf_counter()
    sents = _sentences_of(prep, layout, sampling, batch_size, progress_bar)
    seconds = time.perf_counter() - t0
    obs = _generated_obs(col, conds, layout.n_cells, multi)
    out = _to_anndata(prep.model, genes, sents, obs, inverse)
    out.uns["c2s_generate"] = {
        "task": task,
        "n_genes": prep.n_genes,
        "n_cells": layout.n_cells,
        **sampling,
        "seconds": seconds,
    }
    return out


def _generation_task(task):
    """The task, if it generates cells from a label."""
    t = task_of(task)
    if t.answer != "cells" or t.kind not in ("single", "multi"):
        raise C2SError(
            f"Task {task!r} does not generate cells from a label; use cell_type_generation or "
            "tissue_conditional_generation."
        )
    return t


def _conditions(labels, n_per_label: int) -> list:
    """One label per prompt: a list's labels ``n_per_label`` times each (a repeated label
    counts twice), or ``{label: count}``."""
    pairs = labels.items() if isinstance(labels, dict) else [(lab, n_per_label) for lab in labels]
    conds = [lab for lab, n in pairs for _ in range(int(n))]
    if not conds:
        raise C2SError("No labels to generate cells for.")
    return conds


def _sentences_of(prep, layout, sampling: dict, batch_size, progress_bar) -> list[list[int]]:
    """Gene-constrained decoding of the layout's prompts: every cell's gene ids, in order."""
    from c2s.model import generate_cells

    groups = generate_cells(
        prep.model,
        layout,
        prep.n_genes,
        batch_size=batch_size,
        progress_bar=progress_bar,
        **sampling,
    )
    return [cell for cells in groups for cell in cells]


def _generated_obs(col: str, conds: list, per: int, multi: bool) -> pd.DataFrame:
    """The generated cells' obs: the condition, and for multi-cell tasks each cell's group and
    its number in the group (from 1)."""
    obs = pd.DataFrame(
        {col: [lab for lab in conds for _ in range(per)]},
        index=[f"c2s_gen_{i}" for i in range(len(conds) * per)],
    )
    if multi:
        obs["c2s_group"] = np.repeat(np.arange(len(conds)), per)
        obs["c2s_cell"] = np.tile(np.arange(1, per + 1), len(conds))
    return obs


def perturb(
    data,
    model,
    perturbations: Sequence[str],
    *,
    perturbation_key: str | None = "perturbation",
    control_value: str = "control",
    n_samples: int = 1,
    n_genes: int | None = None,
    organism: str | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    genes: Sequence[str] | None = None,
    inverse=None,
    batch_size: int = 8,
    split: str | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    var_names: str | None = None,
    strict: bool = False,
    progress_bar: bool | None = None,
):
    """Predict perturbed cells from the control cells of ``data``, under every perturbation.

    ``data``, ``split``, ``layer``, ``use_raw`` and ``var_names`` are as in
    :func:`predict`; sampling options and ``strict`` as in :func:`generate`.

    Parameters
    ----------
    perturbations
        Perturbation names as the model saw them in training (a combination is a name of its
        own, e.g. ``"IFNG+TNF"``).
    perturbation_key, control_value
        The controls are the cells whose obs column ``perturbation_key`` equals
        ``control_value``; ``perturbation_key=None`` takes every cell as a control.
    n_samples
        Predicted cells per (control, perturbation), each from its own random stream.

    Returns
    -------
    A new AnnData, one row per (control cell, perturbation, sample) in that order, with the
    control's obs columns, ``obs["control_cell"]``, ``obs["perturbation"]``,
    ``obs["sample"]``, ``obs["c2s_sentence"]`` and ``obs["c2s_n_genes"]``, and expression
    from the inverse transform; nothing is written into ``data``.
    """
    perturbations = perturbation_names(perturbations)
    check_sampling(temperature, top_k, top_p, seed)
    at_least(batch_size=(batch_size, 1), n_samples=(n_samples, 1))
    prep = prepare(
        data,
        model,
        task="perturbation_prediction",
        n_genes=n_genes,
        organism=organism,
        strict=strict,
        checks=[lambda m: check_perturbations(m, perturbations, strict)],
        cells={"split": split, "layer": layer, "use_raw": use_raw, "var_names": var_names},
    )
    controls = _controls(prep.cells.obs, perturbation_key, str(control_value))
    sampling = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}
    return perturbed_cells(
        prep,
        controls,
        perturbations,
        n_samples=n_samples,
        genes=genes,
        inverse=inverse,
        batch_size=batch_size,
        progress_bar=progress_bar,
        **sampling,
    )


def perturbation_names(perturbations) -> list[str]:
    """The names as strings (one name alone is a list of one), each once (a repeat is
    warned about and dropped). None, a blank name, or a combination with an empty part
    (``"+"``, ``"A+"``) is an error: its prompt would name no perturbation."""
    names = [str(p) for p in ([perturbations] if isinstance(perturbations, str) else perturbations)]
    if not names:
        raise C2SError("Name at least one perturbation.")
    bad = [n for n in names if names_no_perturbation(n)]
    if bad:
        raise C2SError(
            f"Perturbation names must not be blank, and a combination names each of its parts "
            f"(A+B); got {', '.join(map(repr, bad[:5]))}."
        )
    unique = list(dict.fromkeys(names))
    if len(unique) < len(names):
        again = sorted({n for n in names if names.count(n) > 1})
        warn(f"Perturbations named more than once are predicted once: {', '.join(again[:5])}.")
    return unique


def check_perturbations(model, names: list[str], strict: bool) -> None:
    """Perturbations the model never saw in training (per its c2s_config.json) are a
    warning, or an error when ``strict``; a model that records none says nothing."""
    known = model.config.perturbations
    if known is None:
        return
    seen = set(known)
    unseen = [p for p in names if p not in seen]
    if unseen:
        untrusted(
            f"Perturbations the model never saw in training: {', '.join(map(repr, unseen[:5]))}"
            f"{' ...' if len(unseen) > 5 else ''} (it was trained on {len(known)}, e.g. "
            f"{', '.join(known[:3]) or 'none'}; a combination of ones it saw singly is new to "
            "it too); its predictions for them mean little",
            strict,
        )


def perturbed_cells(
    prep,
    controls,
    perturbations,
    *,
    n_samples,
    genes,
    inverse,
    batch_size,
    progress_bar,
    **sampling,
):
    """:func:`perturb`'s work on cells already read (``prep`` of the perturbation task): the
    rows ``controls`` of ``prep.cells`` under each perturbation, ``n_samples`` times."""
    from c2s.prompts import sentence_texts

    cs, r = prep.cells, prep.renderer
    prompts, rows = [], []
    for i in controls:
        sentence = sentence_texts(cs, [i], prep.n_genes)[0]
        for p in perturbations:
            text = r.prompt(values={"control_cell_sentence": sentence, "perturbation_name": p})
            for j in range(n_samples):
                prompts.append(text)
                rows.append((i, p, j))
    genes = _genes(prep.model, genes)
    layout = _layout(prep.model, r, prompts, genes)
    sents = _sentences_of(prep, layout, sampling, batch_size, progress_bar)
    idx = np.asarray([i for i, _, _ in rows], dtype=np.int64)
    obs = cs.obs.iloc[idx].reset_index(names="control_cell")
    obs = obs.drop(columns=["split"], errors="ignore")
    obs["control_cell"] = obs["control_cell"].astype(str)
    obs["perturbation"] = [p for _, p, _ in rows]
    obs["sample"] = [j for _, _, j in rows]
    obs.index = [f"c2s_pert_{n}" for n in range(len(rows))]
    return _to_anndata(prep.model, genes, sents, obs, inverse)


def _controls(obs: pd.DataFrame, key: str | None, value: str) -> np.ndarray:
    """Row positions of the control cells."""
    if key is None:
        return np.arange(len(obs))
    if key not in obs.columns:
        raise C2SError(
            f"The input has no obs column {key!r} to find its control cells in; name it with "
            "perturbation_key= (--perturbation-key), or pass perturbation_key=None "
            "(--perturbation-key none) when every cell is a control."
        )
    is_ctrl = (obs[key].astype(str) == value).to_numpy()
    if not is_ctrl.any():
        seen = sorted(obs[key].astype(str).unique())
        raise C2SError(
            f"No control cells: no cell has {key} == {value!r} (its values: {seen[:10]}"
            f"{' ...' if len(seen) > 10 else ''}). Set control_value= (--control-value)."
        )
    return np.flatnonzero(is_ctrl)
