"""``predict``: a label per cell (or per group of cells) by scoring, constrained decoding or
free decoding."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from c2s._deprecate import renamed
from c2s._errors import C2SError
from c2s.tl._inputs import (
    at_least,
    check_inplace,
    check_labels,
    label_set,
    prepare,
    task_of,
)
from c2s.tl._results import PredictionResult

MODES = ("auto", "score", "constrained", "free", "probe")


@renamed(top_k="top_labels")
def predict(
    data,
    model,
    *,
    task: str = "cell_type_prediction",
    mode: Literal["auto", "score", "constrained", "free", "probe"] = "auto",
    labels: Sequence[str] | None = None,
    calibration: Literal["none", "content_free", "validation"] = "none",
    length_norm: bool = False,
    top_labels: int = 1,
    key_added: str = "c2s_prediction",
    n_genes: int | None = None,
    organism: str | None = None,
    group_by: Sequence[str] | None = None,
    max_new_tokens: int | None = None,
    batch_size: int = 8,
    split: str | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    var_names: str | None = None,
    inplace: bool = True,
    strict: bool = False,
    progress_bar: bool | None = None,
) -> PredictionResult | None:
    """Predict a label per cell (or per group of cells for multi-cell tasks).

    Parameters
    ----------
    data
        An AnnData, or a c2s dataset (directory or :class:`~c2s.io.C2SDataset`; ``split``
        picks one split; needs ``inplace=False``).
    model
        A :class:`~c2s.model.C2SModel`, or its directory or hub id.
    mode
        ``"score"``: the log-likelihood of every candidate label, argmax and probabilities
        (the prompt's key/value cache is shared across candidates); ``"constrained"``: greedy
        decoding restricted to the candidates; ``"free"``: plain greedy decoding with a short
        token budget; ``"probe"``: the linear probe on the model's cell embeddings that
        training fitted on the training cells (``c2s_config.json``), with probabilities.
        ``"auto"``: score when a label set is known (``labels`` or the model's
        ``c2s_config.json``), else free.
    labels
        Candidate labels (default: those the model saw in training).
    calibration
        Score mode: ``"none"`` (the raw log-likelihoods), ``"content_free"`` (minus each
        label's log-likelihood after the prompt with an empty cell sentence) or
        ``"validation"`` (plus per-label biases fitted on the validation cells after
        training, kept in ``c2s_config.json``). The default was chosen on validation cells
        (BENCHMARKS.md, science section).
    length_norm
        Score mode: compare labels by their mean log-probability per token instead of the sum.
    top_labels
        Also write the ``top_labels`` most probable labels and their probabilities (score and
        probe modes). (Its old name ``top_k=`` still works, with a warning.)
    n_genes, organism
        Genes per sentence and the prompt's organism (default: the model's).
    group_by
        Multi-cell tasks: obs columns whose values form the groups.
    layer, use_raw, var_names
        AnnData input: rank ``layers[layer]`` or ``raw.X``; take gene names from a var column.
    inplace
        Write into the AnnData (and return None), or return the results.
    strict
        Refuse (instead of warning about) a task the model was not trained for and candidate
        labels it never saw or cannot spell.

    Returns
    -------
    With ``inplace=True``, None; the AnnData gets ``obs[key_added]`` (the label),
    ``obs[key_added + "_probability"]`` (score mode), ``obs[key_added + "_answer"]`` (the raw
    answer text, free mode), ``obsm[key_added + "_probabilities"]`` (cells x labels, score
    mode; columns in the order of ``uns[key_added]["labels"]``) and ``uns[key_added]``
    (task, mode, labels, n_genes, seconds, n_prompts, calibration, length_norm). With
    ``top_labels > 1``, ``obs[key_added + "_top{i}"]`` and
    ``obs[key_added + "_top{i}_probability"]`` for i = 1..top_labels. With ``inplace=False``,
    a :class:`~c2s.tl.PredictionResult` (``.write(adata)`` writes the fields above,
    ``.to_frame()`` is one row per cell with the same columns as obs gets, plus
    ``"p_" + label`` per candidate label, score mode; its ``attrs["c2s"]`` holds what uns
    would). Cells that express no gene get no prediction (named in a warning).
    """
    check_inplace(data, inplace)
    _check_options(task, mode, calibration, length_norm, top_labels, batch_size, max_new_tokens)
    cells = {"split": split, "layer": layer, "use_raw": use_raw, "var_names": var_names}
    prep = prepare(
        data, model, task=task, n_genes=n_genes, organism=organism, strict=strict, cells=cells
    )
    options = {"key_added": key_added, "top_labels": top_labels, "batch_size": batch_size}
    if mode == "probe":
        result = _probe_predict(prep, labels, **options)
    else:
        mode, cands = _candidates(prep, mode, labels, strict, calibration, length_norm, top_labels)
        scoring = {"calibration": calibration, "length_norm": length_norm}
        result = _decode_predict(
            prep, mode, cands, group_by, max_new_tokens, progress_bar, scoring, **options
        )
    if inplace:
        result.write(data)
        return None
    return result


def _check_options(task, mode, calibration, length_norm, top_labels, batch_size, max_new_tokens):
    """The options, before the model is loaded: the task answers with a label, a known mode
    and calibration, and the scoring options only where they apply."""
    from c2s.model import CALIBRATIONS

    if mode not in MODES:
        raise C2SError(f"mode must be one of {MODES}, not {mode!r}.")
    at_least(
        batch_size=(batch_size, 1), max_new_tokens=(max_new_tokens, 1), top_labels=(top_labels, 1)
    )
    if calibration not in CALIBRATIONS:
        raise C2SError(f"calibration must be one of {CALIBRATIONS}, not {calibration!r}.")
    if mode == "probe" and (calibration != "none" or length_norm):
        raise C2SError("calibration and length_norm apply to label scoring, not the probe.")
    if calibration == "validation" and length_norm:
        raise C2SError(
            "The validation calibration was fitted on summed log-likelihoods; use it without "
            "length_norm."
        )
    if task_of(task).answer != "label":
        raise C2SError(f"Task {task!r} does not answer with a label; predict needs one that does.")


def _candidates(prep, mode, labels, strict, calibration, length_norm, top_labels):
    """The mode (``"auto"`` resolved) and the candidate labels, checked against the model."""
    cands = label_set(prep.model, prep.renderer.task, labels)
    if mode == "auto":
        mode = "score" if cands else "free"
    if mode in ("score", "constrained") and not cands:
        raise C2SError(
            f"No candidate labels for {prep.renderer.task.label!r}: the model's c2s_config.json "
            "lists none. Pass labels= (--labels A B ...) or use mode='free'."
        )
    if mode in ("score", "constrained"):
        check_labels(prep.model, prep.renderer, cands, strict)
    if mode != "score" and (calibration != "none" or length_norm or top_labels > 1):
        raise C2SError(
            f"calibration, length_norm and top_labels apply to label scoring; mode is {mode!r}."
        )
    return mode, cands


def _decode_predict(
    prep, mode, cands, group_by, max_new_tokens, progress_bar, scoring, **options
) -> PredictionResult:
    """Score, constrained or free mode: the units' prompts through the model, their labels
    spread over their cells."""
    units = prep.units(group_by)
    fitted = prep.prompts(units, reserve=max_new_tokens or 16)
    t0 = time.perf_counter()
    run = {"batch_size": options["batch_size"], "progress_bar": progress_bar}
    probs = answers = None
    if mode == "score":
        pred, probs = _score(prep, units, fitted, cands, scoring, run)
    elif mode == "constrained":
        from c2s.model import decode_constrained

        answer_texts = [prep.renderer.answer(c) for c in cands]
        idx = decode_constrained(
            prep.model, fitted.prompts, answer_texts, prompt_ids=fitted.ids, **run
        )
        pred = [cands[j] for j in idx]
    else:
        pred, answers = _free(prep, fitted.prompts, cands, max_new_tokens, run)
    info = {
        "task": prep.renderer.task.name,
        "mode": mode,
        "labels": cands,
        "n_genes": prep.n_genes,
        "seconds": time.perf_counter() - t0,
        "n_prompts": len(fitted.prompts),
    }
    if mode == "score":
        info.update(scoring)
    return _per_cell(prep, units, pred, probs, answers, cands, info, **options)


def _score(prep, units, fitted, cands, scoring, run):
    """Labels and probabilities per unit from the candidates' (calibrated) log-likelihoods."""
    from c2s.model import score_answers, softmax

    renderer, length_norm = prep.renderer, scoring["length_norm"]
    answer_texts = [renderer.answer(c) for c in cands]
    ll = score_answers(
        prep.model,
        fitted.prompts,
        answer_texts,
        per_token=length_norm,
        prompt_ids=fitted.ids,
        **run,
    )
    ll = _calibrated(prep, units, cands, answer_texts, ll, **scoring)
    return [cands[j] for j in ll.argmax(1)], softmax(ll)


def _free(prep, prompts, cands, max_new_tokens, run):
    """Labels and raw answers per unit from plain greedy decoding (a budget of the longest
    candidate's tokens and 4 more, else 32)."""
    from c2s.model import generate_free

    model, renderer = prep.model, prep.renderer
    budget = max_new_tokens or (
        max(len(model.tokenizer(" " + renderer.answer(c))["input_ids"]) for c in cands) + 4
        if cands
        else 32
    )
    answers = generate_free(model, prompts, max_new_tokens=budget, **run)
    return [renderer.task.parse(a) for a in answers], answers


def _per_cell(
    prep, units, pred, probs, answers, cands, info, *, key_added, top_labels, batch_size
) -> PredictionResult:
    """Unit results spread over the units' cells, for every cell of the input (cells with no
    gene, left out before, get none)."""
    unit_of_cell = np.full(prep.cells.n_cells, -1)
    for u, cells in enumerate(units):
        unit_of_cell[list(cells)] = u
    return _spread(prep, unit_of_cell, pred, probs, answers, cands, info, key_added, top_labels)


def _spread(
    prep, unit_of_cell, pred, probs, answers, cands, info, key_added, top_labels
) -> PredictionResult:
    """The result for every cell of the input from the units' labels (``pred``),
    probabilities and answers: cell ``c`` of ``prep.cells`` gets unit ``unit_of_cell[c]``'s,
    the input's cells left out (no gene) get no prediction."""
    per_unit = PredictionResult(
        index=pd.RangeIndex(len(pred)),
        labels=np.asarray(pred, dtype=object),
        info=info,
        key_added=key_added,
        probability=None if probs is None else probs.max(1),
        answers=None if answers is None else np.asarray(answers, dtype=object),
        probabilities=probs,
        candidates=[] if probs is None else list(cands),
        top_labels=top_labels,
    )
    return per_unit.expand(_input_rows(prep, unit_of_cell), prep.index)


def _input_rows(prep, of_cells: np.ndarray) -> np.ndarray:
    """``of_cells[c]`` for each cell of the input, where ``c`` is its row of ``prep.cells``
    (matched by cell id), and -1 for the input's cells left out (no gene)."""
    kept = prep.cells.obs.index
    if kept.equals(prep.index):
        return of_cells
    where = kept.get_indexer(prep.index)
    return np.where(where >= 0, of_cells[where], -1)


def _calibrated(prep, units, cands, answers, ll, calibration, length_norm):
    """The label scores after ``calibration`` (see :mod:`c2s.model._calibrate`)."""
    model, renderer = prep.model, prep.renderer
    if calibration == "content_free" and units:
        from c2s.model import score_answers

        prompt = renderer.content_free_prompt(prep.cells, units[0])
        return ll - score_answers(model, [prompt], answers, per_token=length_norm)[0]
    if calibration == "validation":
        from c2s.model import label_bias

        cal = model.config.calibration
        if not cal:
            raise C2SError(
                "The model has no validation calibration: c2s train fits one after training a "
                "single-cell label task when the dataset has validation cells. Use "
                "calibration='none' or 'content_free'."
            )
        if cal["task"] != renderer.task.name:
            raise C2SError(
                f"The model's calibration is for {cal['task']!r}, not {renderer.task.name!r}."
            )
        return ll + label_bias(cal, cands)
    return ll


def _probe_predict(prep, labels, *, key_added, top_labels, batch_size) -> PredictionResult:
    """Labels from the linear probe on the model's embeddings (``mode="probe"``)."""
    from c2s.model import probe_probabilities
    from c2s.tl._embed import embed_cells

    model, renderer, cs = prep.model, prep.renderer, prep.cells
    probe = model.config.probe
    if not probe:
        raise C2SError(
            "The model has no linear probe: c2s train fits one after training a single-cell "
            "label task (probe=True). Use mode='score' instead."
        )
    if renderer.task.name != probe["task"]:
        raise C2SError(f"The model's probe is for {probe['task']!r}, not {renderer.task.name!r}.")
    t0 = time.perf_counter()
    X = embed_cells(model, renderer, cs, probe["pool"], probe["hidden_layer"], batch_size)
    probs, cands = probe_probabilities(probe, X), list(probe["labels"])
    if labels is not None:  # restrict to the labels asked for (renormalized)
        want = [str(x) for x in labels]
        unknown = [x for x in want if x not in cands]
        if unknown:
            raise C2SError(f"The probe knows no label(s) {unknown}; it knows {cands}.")
        cols = [cands.index(x) for x in want]
        probs = probs[:, cols] / probs[:, cols].sum(1, keepdims=True)
        cands = want
    pred = np.asarray(cands, dtype=object)[probs.argmax(1)]
    info = {
        "task": renderer.task.name,
        "mode": "probe",
        "labels": cands,
        "n_genes": renderer.n_genes,
        "seconds": time.perf_counter() - t0,
        "n_prompts": cs.n_cells,
    }
    cell_rows = np.arange(cs.n_cells)
    return _spread(prep, cell_rows, pred, probs, None, cands, info, key_added, top_labels)
