"""``predict``: a label per cell (or per group of cells) by scoring, constrained decoding or
free decoding."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from c2s._errors import C2SError
from c2s.tl._inputs import (
    at_least,
    check_inplace,
    check_labels,
    check_task,
    fit_prompts,
    is_anndata,
    label_set,
    load_model,
    read_cells,
    renderer,
    settings,
    units_of,
)

MODES = ("auto", "score", "constrained", "free", "probe")


def predict(
    data,
    model,
    *,
    task: str = "cell_type_prediction",
    mode: Literal["auto", "score", "constrained", "free", "probe"] = "auto",
    labels: Sequence[str] | None = None,
    calibration: Literal["none", "content_free", "validation"] = "none",
    length_norm: bool = False,
    top_k: int = 1,
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
):
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
    top_k
        Also write the ``top_k`` most probable labels and their probabilities (score and
        probe modes).
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
    ``top_k > 1``, ``obs[key_added + "_top{i}"]`` and ``obs[key_added + "_top{i}_probability"]``
    for i = 1..top_k. With ``inplace=False``, a DataFrame
    with one row per cell and the same columns as obs gets, plus ``"p_" + label`` per
    candidate label (score mode); ``attrs["c2s"]`` holds what uns would. Cells that express
    no gene get no prediction (named in a warning).
    """
    check_inplace(data, inplace)
    m = load_model(model)
    k, org = settings(m, n_genes, organism)
    if mode not in MODES:
        raise C2SError(f"mode must be one of {MODES}, not {mode!r}.")
    at_least(batch_size=(batch_size, 1), max_new_tokens=(max_new_tokens, 1), top_k=(top_k, 1))
    _check_scoring_options(mode, calibration, length_norm, top_k)
    check_task(m, task, strict)
    cs, index = read_cells(
        data, m, n_genes=k, split=split, layer=layer, use_raw=use_raw, var_names=var_names
    )
    r = renderer(m, task, k, org)
    if r.task.answer != "label":
        raise C2SError(f"Task {task!r} does not answer with a label; predict needs one that does.")
    if mode == "probe":
        args = (data, m, cs, index, r, labels, key_added, inplace, batch_size, top_k)
        return _probe_predict(*args)
    cands = label_set(m, r.task, labels)
    if mode == "auto":
        mode = "score" if cands else "free"
    if mode in ("score", "constrained") and not cands:
        raise C2SError(
            f"No candidate labels for {r.task.label!r}: the model's c2s_config.json lists none. "
            "Pass labels= (--labels A B ...) or use mode='free'."
        )
    if mode in ("score", "constrained"):
        check_labels(m, r, cands, strict)
    if mode != "score" and (calibration != "none" or length_norm or top_k > 1):
        raise C2SError(
            f"calibration, length_norm and top_k apply to label scoring; mode is {mode!r}."
        )
    units = units_of(r, cs, group_by)
    prompts, _, ids = fit_prompts(r, cs, units, m, reserve=max_new_tokens or 16)
    t0 = time.perf_counter()
    probs = answers = None
    kw = {"batch_size": batch_size, "progress_bar": progress_bar, "prompt_ids": ids}
    if mode == "score":
        from c2s.model import score_answers, softmax

        answers_text = [r.answer(c) for c in cands]
        ll = score_answers(m, prompts, answers_text, per_token=length_norm, **kw)
        ll = _calibrated(m, r, cs, units, cands, answers_text, ll, calibration, length_norm)
        probs = softmax(ll)
        pred = [cands[j] for j in ll.argmax(1)]
    elif mode == "constrained":
        from c2s.model import decode_constrained

        idx = decode_constrained(m, prompts, [r.answer(c) for c in cands], **kw)
        pred = [cands[j] for j in idx]
    else:
        from c2s.model import generate_free

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
    if mode == "score":
        info.update(calibration=calibration, length_norm=length_norm)
    prob_frame = None
    if probs is not None:
        prob_frame = pd.DataFrame(
            probs[np.maximum(cell_unit, 0)], index=cs.obs.index, columns=cands
        )
        prob_frame[~have] = np.nan
        prob_frame = prob_frame.reindex(index)  # cells with no gene: NaN
    frame = frame.reindex(index)
    return _results(data, frame, prob_frame, info, key_added, inplace, top_k)


def _check_scoring_options(mode, calibration, length_norm, top_k) -> None:
    from c2s.model import CALIBRATIONS

    if calibration not in CALIBRATIONS:
        raise C2SError(f"calibration must be one of {CALIBRATIONS}, not {calibration!r}.")
    if mode == "probe" and (calibration != "none" or length_norm):
        raise C2SError("calibration and length_norm apply to label scoring, not the probe.")
    if calibration == "validation" and length_norm:
        raise C2SError(
            "The validation calibration was fitted on summed log-likelihoods; use it without "
            "length_norm."
        )


def _calibrated(m, r, cs, units, cands, answers, ll, calibration, length_norm):
    """The label scores after ``calibration`` (see :mod:`c2s.model._calibrate`)."""
    if calibration == "content_free" and units:
        from c2s.model import score_answers

        prompt = r.content_free_prompt(cs, units[0])
        return ll - score_answers(m, [prompt], answers, per_token=length_norm)[0]
    if calibration == "validation":
        from c2s.model import label_bias

        cal = m.config.calibration
        if not cal:
            raise C2SError(
                "The model has no validation calibration: c2s train fits one after training a "
                "single-cell label task when the dataset has validation cells. Use "
                "calibration='none' or 'content_free'."
            )
        if cal["task"] != r.task.name:
            raise C2SError(f"The model's calibration is for {cal['task']!r}, not {r.task.name!r}.")
        return ll + label_bias(cal, cands)
    return ll


def _top_k(probs: pd.DataFrame, key_added: str, k: int) -> pd.DataFrame:
    """The ``k`` most probable labels per cell and their probabilities (NaN rows stay empty)."""
    P = probs.to_numpy()
    have = ~np.isnan(P).any(1)
    order = np.argsort(-np.nan_to_num(P, nan=-1.0), axis=1, kind="stable")[:, :k]
    names = np.asarray(probs.columns, dtype=object)
    out = {}
    for i in range(min(k, P.shape[1])):
        out[f"{key_added}_top{i + 1}"] = np.where(have, names[order[:, i]], None)
        out[f"{key_added}_top{i + 1}_probability"] = np.where(
            have, np.take_along_axis(P, order[:, i : i + 1], 1)[:, 0], np.nan
        )
    return pd.DataFrame(out, index=probs.index)


def _results(data, frame, prob_frame, info, key_added, inplace, top_k=1):
    """Write into the AnnData (inplace) or return the frame with ``p_`` columns."""
    if top_k > 1 and prob_frame is not None:
        frame = pd.concat([frame, _top_k(prob_frame, key_added, top_k)], axis=1)
    if inplace and is_anndata(data):
        for c in frame.columns:
            data.obs[c] = frame[c].to_numpy()
        if prob_frame is not None:
            # an array (labels in uns): label names may hold "/", which h5ad keys cannot
            data.obsm[key_added + "_probabilities"] = prob_frame.to_numpy()
        data.uns[key_added] = info
        return None
    if prob_frame is not None:
        frame = pd.concat([frame, prob_frame.add_prefix("p_")], axis=1)
    frame.attrs["c2s"] = info
    return frame


def _probe_predict(data, m, cs, index, r, labels, key_added, inplace, batch_size, top_k):
    """Labels from the linear probe on the model's embeddings (``mode="probe"``)."""
    from c2s.model import probe_probabilities
    from c2s.tl._embed import embed_cells

    probe = m.config.probe
    if not probe:
        raise C2SError(
            "The model has no linear probe: c2s train fits one after training a single-cell "
            "label task (probe=True). Use mode='score' instead."
        )
    if r.task.name != probe["task"]:
        raise C2SError(f"The model's probe is for {probe['task']!r}, not {r.task.name!r}.")
    t0 = time.perf_counter()
    X = embed_cells(m, r, cs, probe["pool"], probe["hidden_layer"], batch_size)
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
    frame = pd.DataFrame(
        {key_added: pred, key_added + "_probability": probs.max(1)}, index=cs.obs.index
    ).reindex(index)
    prob_frame = pd.DataFrame(probs, index=cs.obs.index, columns=cands).reindex(index)
    info = {
        "task": r.task.name, "mode": "probe", "labels": cands, "n_genes": r.n_genes,
        "seconds": time.perf_counter() - t0, "n_prompts": cs.n_cells,
    }  # fmt: skip
    return _results(data, frame, prob_frame, info, key_added, inplace, top_k)
