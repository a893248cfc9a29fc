"""The reward functions: plain, one score per completion, no state."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from c2s._errors import C2SError
from c2s.metrics import kendall_tau, pearson, spearman

_SPACE = re.compile(r"\s+")


def _text(completion) -> str:
    """A completion's text (TRL's conversational form: the last message's content)."""
    if isinstance(completion, list | tuple):
        return str(completion[-1]["content"]) if completion else ""
    return str(completion)


def _words(text: str) -> list[str]:
    """A cell sentence's gene words: whitespace-separated, the closing period dropped."""
    text = text.strip()
    if text.endswith("."):
        text = text[:-1]
    return text.split()


def _norm(text: str) -> str:
    return _SPACE.sub(" ", _text(text).strip().rstrip(".").strip().lower())


def _pairs(completions, column, name: str) -> list:
    if column is None:
        raise C2SError(f"This reward needs the column {name!r} in the data.")
    if len(column) != len(completions):
        raise C2SError(f"{len(completions)} completions but {len(column)} values of {name!r}.")
    return list(column)


def label(completions, label=None, *, partial: str | None = None, **_) -> list[float]:
    """1.0 when the completion is the label after normalization (case, spaces, a closing
    period), else 0.0; with ``partial="tokens"``, a wrong answer scores the Jaccard overlap of
    its words with the label's."""
    if partial not in (None, "tokens"):
        raise C2SError(f"partial must be None or 'tokens', got {partial!r}.")
    out = []
    for c, y in zip(completions, _pairs(completions, label, "label"), strict=True):
        a, b = _norm(c), _norm(y)
        if a == b:
            out.append(1.0)
        elif partial == "tokens":
            sa, sb = set(a.split()), set(b.split())
            out.append(len(sa & sb) / len(sa | sb) if sa | sb else 0.0)
        else:
            out.append(0.0)
    return out


def gene_validity(
    completions, *, genes: Sequence[str], n_genes: int | None = None, **_
) -> list[float]:
    """Distinct known genes in the answer over its number of words (or over ``n_genes``
    when that is larger): 1.0 for a sentence of ``n_genes`` distinct valid genes, less for
    repeats, unknown words, stray text or a short answer."""
    known = {str(g).upper() for g in genes}
    if not known:
        raise C2SError("gene_validity needs the model's genes (genes=...).")
    out = []
    for c in completions:
        words = _words(_text(c))
        valid = {w.upper() for w in words if w.upper() in known}
        denom = max(len(words), n_genes or 0)
        out.append(len(valid) / denom if denom else 0.0)
    return out


def _expression(text: str, inverse) -> dict[str, float]:
    """Gene -> expression of a cell sentence through the inverse transform (first mention
    of a gene counts; later repeats and their positions are ignored)."""
    words = _words(_text(text))
    if not words:
        return {}
    vals = np.asarray(inverse.predict(np.arange(len(words)), np.full(len(words), len(words))))
    out: dict[str, float] = {}
    for w, v in zip(words, vals, strict=True):
        out.setdefault(w.upper(), float(v))
    return out


def _vector(expr: dict[str, float], genes: Sequence[str]) -> np.ndarray:
    return np.array([expr.get(g, 0.0) for g in genes], dtype=np.float64)


def _score(x, y, method: str) -> float:
    f = {"pearson": pearson, "spearman": spearman, "kendall": kendall_tau}[method]
    v = f(x, y)
    return 0.0 if v != v else float(v)  # a constant side has no correlation: no reward


def _method(method: str, allowed: tuple[str, ...]) -> str:
    if method not in allowed:
        raise C2SError(f"method must be one of {allowed}, got {method!r}.")
    return method


def expression_similarity(
    completions, reference_cell=None, *, inverse, method: str = "pearson", **_
) -> list[float]:
    """Correlation (``pearson`` or ``spearman``) of the generated and the reference cell's
    expression over the genes either names (absent genes count as 0); 0.0 when undefined."""
    from c2s.inverse import load_inverse

    method = _method(method, ("pearson", "spearman"))
    inv = load_inverse(inverse)
    refs = _pairs(completions, reference_cell, "reference_cell")
    out = []
    for c, ref in zip(completions, refs, strict=True):
        a, b = _expression(c, inv), _expression(ref, inv)
        genes = sorted(set(a) | set(b))
        out.append(_score(_vector(a, genes), _vector(b, genes), method) if genes else 0.0)
    return out


def perturbation_program(
    completions,
    control_cell=None,
    perturbed_cell=None,
    *,
    inverse,
    program=None,
    method: str = "kendall",
    **_,
) -> list[float]:
    """Kendall's tau (``method="kendall"``) or Pearson between the predicted change of a gene
    programme from the control (completion minus ``control_cell``) and the observed change
    (``perturbed_cell`` minus ``control_cell``), over the programme's genes, as C2S-Scale's
    perturbation reward; 0.0 when undefined. ``program``: one programme (a list of genes) for
    every example, or, as a ``program`` column, one list of genes per example."""
    from c2s.inverse import load_inverse

    method = _method(method, ("kendall", "pearson"))
    inv = load_inverse(inverse)
    ctrl = _pairs(completions, control_cell, "control_cell")
    pert = _pairs(completions, perturbed_cell, "perturbed_cell")
    if not program:
        raise C2SError(
            "perturbation_program needs the programme: program=[genes] or a 'program' column."
        )
    program = [program] if isinstance(program, str) else program
    per_example = not isinstance(program[0], str)
    progs = _pairs(completions, program, "program") if per_example else [program] * len(ctrl)
    out = []
    for c, x0, x1, prog in zip(completions, ctrl, pert, progs, strict=True):
        genes = [str(g).upper() for g in prog]
        base = _vector(_expression(x0, inv), genes)
        pred = _vector(_expression(c, inv), genes) - base
        obs = _vector(_expression(x1, inv), genes) - base
        out.append(_score(pred, obs, method))
    return out


def text_similarity(completions, reference_text=None, *, encoder: Callable, **_) -> list[float]:
    """Cosine similarity of the completion's and ``reference_text``'s sentence embeddings
    (``encoder``: texts -> L2-normalized vectors, e.g. :func:`c2s.metrics.sentence_encoder`)."""
    refs = [str(r) for r in _pairs(completions, reference_text, "reference_text")]
    a = encoder([_text(c) for c in completions])
    b = encoder(refs)
    return [float(x) for x in np.sum(np.asarray(a) * np.asarray(b), axis=1)]
