"""``screen``: the dual-context virtual screen. Every perturbation is predicted from the control
cells of each context; the read-out is the change of a gene programme's score against the
controls, and perturbations are ranked by their effect in each context and by the context
split (the effect in the first context minus the second)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from c2s._errors import C2SError
from c2s.tl._generate import (
    _controls,
    _genes,
    _to_anndata,
    check_perturbations,
    perturbation_names,
    perturbed_cells,
)
from c2s.tl._inputs import at_least, prepare
from c2s.tl._screen_result import ScreenResult


def screen(
    data,
    model,
    perturbations: Sequence[str],
    *,
    context_key: str,
    program: Sequence[str],
    contexts: Sequence[str] | None = None,
    perturbation_key: str | None = "perturbation",
    control_value: str = "control",
    n_samples: int = 5,
    n_genes: int | None = None,
    n_boot: int = 200,
    seed: int = 0,
    inverse=None,
    batch_size: int = 8,
    split: str | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    var_names: str | None = None,
    strict: bool = False,
    progress_bar: bool | None = None,
) -> ScreenResult:
    """Rank perturbations by their predicted effect on a gene programme, per context.

    Parameters
    ----------
    data
        An AnnData (or c2s dataset) holding control cells of two or more contexts (as in
        :func:`perturb`: the cells whose ``perturbation_key`` equals ``control_value``; with
        ``perturbation_key=None``, every cell).
    perturbations
        Perturbation names, as the model saw them in training.
    context_key, contexts
        The obs column of the context, and the contexts to compare (default: every context
        with controls, in sorted order; the split is the first minus the second).
    program
        The programme's gene names (e.g. :data:`c2s.datasets.MHC_I`); its score is a cell's
        mean expression over them (expression from the inverse transform of its top genes).
    n_samples
        Predicted cells per control and perturbation.
    n_boot
        Bootstrap resamples (of predicted and control cells) for the 95% intervals.
    split, layer, use_raw, var_names
        Which cells and expression, as in :func:`predict`.
    strict
        Fail, instead of warning, when the model was not trained for perturbations or never
        saw one of ``perturbations`` (as in :func:`perturb`).

    Returns
    -------
    A :class:`~c2s.tl.ScreenResult`: its ``table`` (``.to_frame()``) has one row per
    perturbation: ``effect_<ctx>`` (predicted programme score minus the controls'),
    ``low_<ctx>`` / ``high_<ctx>`` (95% bootstrap interval) and ``rank_<ctx>`` (1 = largest
    effect) for each context, ``split`` (first context's effect minus the second's) and
    ``rank_split``; sorted by ``split``, largest first; ``attrs["c2s"]`` holds the settings and
    the controls' programme scores per context. ``.report(top)`` is the Markdown report,
    ``.plot(ax or path, top=)`` the scatter of the two contexts' effects and
    ``.write(out)`` writes screen.csv, report.md and screen.png as ``c2s screen`` does.
    Nothing is written into ``data``.
    """
    t0 = time.perf_counter()
    perts = perturbation_names(perturbations)
    at_least(batch_size=(batch_size, 1), n_samples=(n_samples, 1), n_boot=(n_boot, 1))
    at_least(seed=(seed, 0))
    program, contexts = _program_names(program), _context_names(contexts)
    found = []  # the programme among the model's genes, found when the model is checked

    def check_program(m) -> None:
        found.append(_program(m, program))

    prep = prepare(
        data,
        model,
        task="perturbation_prediction",
        n_genes=n_genes,
        strict=strict,
        checks=[lambda m: check_perturbations(m, perts, strict), check_program],
        cells={"split": split, "layer": layer, "use_raw": use_raw, "var_names": var_names},
    )
    cs = prep.cells
    if context_key not in cs.obs.columns:
        raise C2SError(f"No obs column {context_key!r} holds the cells' context.")
    ctrl = _controls(cs.obs, perturbation_key, str(control_value))
    ctx_of = cs.obs[context_key].astype(str).to_numpy()
    contexts = _compared(contexts, sorted(set(ctx_of[ctrl])))
    programme = found[0]
    base_score = _score(_control_cells(prep, programme, ctrl, inverse).X, programme.columns)
    pred = perturbed_cells(
        prep,
        ctrl,
        perts,
        n_samples=n_samples,
        genes=None,
        inverse=inverse,
        batch_size=batch_size,
        progress_bar=progress_bar,
        temperature=1.0,
        top_k=None,
        top_p=None,
        seed=seed,
    )
    pred_score = _score(pred.X, programme.columns)
    predicted = (pred_score, pred.obs[context_key].astype(str).to_numpy(), pred.obs["perturbation"])
    controls = (base_score, ctx_of[ctrl])
    table = _effects(perts, contexts, predicted, controls, n_boot, seed)
    table.attrs["c2s"] = {
        "contexts": contexts,
        "program": program,
        "n_samples": n_samples,
        "n_genes": prep.n_genes,
        "control_score": {c: float(base_score[ctx_of[ctrl] == c].mean()) for c in contexts},
        "n_predicted_cells": int(pred.n_obs),
    }
    return ScreenResult(table, seconds=time.perf_counter() - t0)


def _program_names(program) -> list[str]:
    program = [str(g) for g in ([program] if isinstance(program, str) else program)]
    if not program:
        raise C2SError("Name the programme's genes (at least one).")
    return program


def _context_names(contexts) -> list[str] | None:
    if contexts is None:
        return None
    contexts = [str(c) for c in ([contexts] if isinstance(contexts, str) else contexts)]
    if len(set(contexts)) < len(contexts):
        raise C2SError(
            f"The contexts to compare must differ, got {contexts}: the split of a context "
            "against itself is 0 for every perturbation."
        )
    return contexts


@dataclass(frozen=True)
class _Programme:
    """The model's ``genes``, their columns by upper-case name (``upper``) and the columns of
    the programme's genes among them (``columns``)."""

    genes: list[str]
    upper: dict[str, int]
    columns: np.ndarray


def _program(m, program: list[str]) -> _Programme:
    """The programme among the model's genes (matched without case); a programme gene the
    model does not know is an error."""
    genes = _genes(m, None)
    upper = {g.upper(): j for j, g in enumerate(genes)}
    unknown = [g for g in program if g.upper() not in upper]
    if unknown:
        raise C2SError(
            f"Programme genes the model does not know: {unknown[:10]}"
            f"{' ...' if len(unknown) > 10 else ''}; use gene symbols from its vocabulary."
        )
    return _Programme(genes, upper, np.asarray(sorted({upper[g.upper()] for g in program})))


def _compared(contexts: list[str] | None, have: list[str]) -> list[str]:
    """The contexts to compare (default: every context with controls, sorted)."""
    contexts = have if contexts is None else contexts
    if len(contexts) < 2 or set(contexts) - set(have):
        raise C2SError(
            f"A screen compares two or more contexts with control cells; asked for {contexts}, "
            f"controls exist in {have}."
        )
    return contexts


def _control_cells(prep, programme: _Programme, ctrl: np.ndarray, inverse):
    """The controls themselves, in the same form as the predictions: their sentences over
    the model's genes, expression from the inverse transform."""
    cs, upper = prep.cells, programme.upper
    names = cs.vocab.display_names.astype(str)
    sents = [[upper[n] for n in (names[g].upper() for g in cs.cell(i)) if n in upper] for i in ctrl]
    return _to_anndata(prep.model, programme.genes, sents, cs.obs.iloc[ctrl][[]], inverse)


def _effects(perts, contexts, predicted, controls, n_boot: int, seed: int) -> pd.DataFrame:
    """Per perturbation and context: the predicted cells' mean programme score minus the
    controls', its 95% bootstrap interval and rank; the split of the first two contexts."""
    pred_score, pred_ctx, pred_pert = predicted
    pred_pert = pred_pert.astype(str).to_numpy()
    base_score, base_ctx = controls
    rng = np.random.default_rng(seed)
    rows = []
    for p in dict.fromkeys(perts):
        row = {"perturbation": p}
        for c in contexts:
            a = pred_score[(pred_pert == p) & (pred_ctx == c)]
            b = base_score[base_ctx == c]
            row[f"effect_{c}"] = float(a.mean() - b.mean())
            boot = [
                rng.choice(a, len(a)).mean() - rng.choice(b, len(b)).mean() for _ in range(n_boot)
            ]
            row[f"low_{c}"], row[f"high_{c}"] = (float(x) for x in np.percentile(boot, [2.5, 97.5]))
        rows.append(row)
    out = pd.DataFrame(rows).set_index("perturbation")
    for c in contexts:
        out[f"rank_{c}"] = out[f"effect_{c}"].rank(ascending=False, method="min").astype(int)
    out["split"] = out[f"effect_{contexts[0]}"] - out[f"effect_{contexts[1]}"]
    out["rank_split"] = out["split"].rank(ascending=False, method="min").astype(int)
    return out.sort_values("split", ascending=False)


def _score(X, prog: np.ndarray) -> np.ndarray:
    """Mean expression over the programme's genes, per cell."""
    sub = X[:, prog]
    sub = sub.toarray() if hasattr(sub, "toarray") else np.asarray(sub)
    return sub.mean(axis=1)


__all__ = ["screen"]
