"""Synthetic perturbation data: control and perturbed cells in several contexts, with planted
effects whose truth is kept with the data.

Every context (a cell line, or a condition such as interferon present) has its own baseline
programme; a perturbation multiplies the expression rates of its target genes by a fixed
fold change in every context. Planted on top, for tests and benchmarks:

- one **context-dependent** perturbation raises a gene programme (named like the MHC class I
  genes) in the first context only, as the drug found by C2S-Scale's dual-context screen;
- combinations ``"A+B"`` act as the sum of their singles' log fold changes; one of them also
  has a **non-additive** term on genes neither single touches.

Counts are negative binomial around the rates (many small integers and ties), as in
:func:`c2s.datasets.synthetic`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from c2s._errors import C2SError

# MHC class I antigen presentation, the programme of the published screen
MHC_I = ("HLA-A", "HLA-B", "HLA-C", "B2M", "TAP1", "TAP2", "TAPBP", "PSMB8", "PSMB9", "NLRC5")
CONTROL = "control"


def synthetic_perturbation(
    n_cells: int = 60,
    n_genes: int = 300,
    *,
    contexts: Sequence[str] = ("ifn", "no_ifn"),
    n_perturbations: int = 8,
    n_targets: int = 15,
    program: Sequence[str] = MHC_I,
    program_fold: float = 4.0,
    genes_per_cell: float = 120,
    normalize: bool = False,
    seed: int = 0,
):
    """Control and perturbed cells in several contexts with planted effects.

    Parameters
    ----------
    n_cells
        Cells per (context, condition); a condition is ``"control"``, a single perturbation
        (``PERT1`` ...) or a combination (``PERT2+PERT3`` additive, ``PERT4+PERT5`` with a
        non-additive term).
    n_genes
        Genes, the programme's among them.
    contexts
        Context names (``obs["context"]``); at least two.
    n_perturbations
        Single perturbations (at least 5: the planted ones need ``PERT1`` ... ``PERT5``).
    n_targets
        Target genes per single perturbation (log2 fold changes of 1 to 2.5, either sign).
    program, program_fold
        The programme's gene names and the fold change ``PERT1`` gives it in ``contexts[0]``
        (none elsewhere).
    genes_per_cell
        Target mean number of detected genes per control cell.
    normalize
        ``log10(1 + cp10k)`` values instead of counts.
    seed
        The same seed gives the same data.

    Returns
    -------
    AnnData (CSR float32) with ``obs`` columns ``perturbation`` (``"control"`` for controls),
    ``context``, ``organism``; and ``uns["synthetic_perturbation"]``: ``control``,
    ``context_dependent`` (``PERT1``), ``context`` (where it acts), ``program``,
    ``additive`` and ``nonadditive`` (the combinations), and ``log2_fold_change`` (genes x
    ``"condition|context"``: the planted effect on the rates, before noise).
    """
    import anndata as ad

    _check_design(n_cells, n_genes, contexts, n_perturbations, n_targets, program)
    rng = np.random.default_rng([seed, 101])
    names, base, prog_idx, others = _genes(rng, n_genes, program)
    ctx_prog = _context_programmes(rng, len(contexts), n_genes, others)
    singles = [f"PERT{i + 1}" for i in range(n_perturbations)]
    lfc = {p: _targets(rng, n_genes, others, n_targets) for p in singles}
    additive, nonadditive = "PERT2+PERT3", "PERT4+PERT5"
    # the combination's own term, on genes neither of its singles touches
    touched = (lfc["PERT4"] != 0) | (lfc["PERT5"] != 0)
    extra = _targets(rng, n_genes, others[~touched[others]], n_targets)

    def effect(cond: str, c: int) -> np.ndarray:
        if cond == CONTROL:
            return np.zeros(n_genes)
        e = sum(lfc[p] for p in cond.split("+"))
        if cond == nonadditive:
            e = e + extra
        if "PERT1" in cond.split("+") and c == 0:
            e = e.copy()
            e[prog_idx] += np.log2(program_fold)
        return e

    conditions = [CONTROL, *singles, additive, nonadditive]
    X, obs, truth = _draw_cells(
        ctx_prog * base, contexts, conditions, effect, n_cells, genes_per_cell, seed
    )
    if normalize:
        from c2s.pp import log10_normalize

        X = log10_normalize(X)
    frame = pd.DataFrame(obs, columns=["perturbation", "context"])
    frame["perturbation"] = pd.Categorical(frame["perturbation"], categories=conditions)
    frame["context"] = pd.Categorical(frame["context"], categories=list(contexts))
    frame["organism"] = "Homo sapiens"
    frame.index = [f"cell_{i}" for i in range(len(frame))]
    adata = ad.AnnData(X=X.astype(np.float32), obs=frame, var=pd.DataFrame(index=names))
    adata.uns["synthetic_perturbation"] = {
        "control": CONTROL,
        "context_dependent": "PERT1",
        "context": contexts[0],
        "program": list(program),
        "additive": additive,
        "nonadditive": nonadditive,
        "log2_fold_change": pd.DataFrame(truth, index=names),
    }
    return adata


def _check_design(n_cells, n_genes, contexts, n_perturbations, n_targets, program) -> None:
    if len(contexts) < 2 or len(set(contexts)) != len(contexts):
        raise C2SError("Give at least two distinct contexts.")
    if n_perturbations < 5:
        raise C2SError("n_perturbations must be at least 5 (the planted ones use PERT1-PERT5).")
    if n_cells < 1 or n_genes < len(program) + 3 * n_targets:
        raise C2SError(
            f"Need n_cells >= 1 and n_genes >= {len(program) + 3 * n_targets} for the programme "
            "and the targets."
        )


def _genes(rng, n_genes: int, program: Sequence[str]):
    """Gene names, baseline rates, the programme's genes (moderately expressed ones, so a
    fold change shows in the top genes) and the other genes."""
    names = [f"Gene{i}" for i in range(n_genes)]
    base = rng.lognormal(0.0, 1.6, n_genes)
    order = np.argsort(-base)
    prog_idx = np.sort(order[n_genes // 10 : n_genes // 10 + len(program)])
    for g, name in zip(prog_idx, program, strict=True):
        names[g] = name
    others = np.setdiff1d(np.arange(n_genes), prog_idx)
    return names, base, prog_idx, others


def _context_programmes(rng, n_contexts: int, n_genes: int, others) -> np.ndarray:
    """Per context, rate multipliers: 20 marker genes of its own raised 3- to 10-fold."""
    ctx_prog = np.ones((n_contexts, n_genes))
    for c in range(n_contexts):
        markers = rng.choice(others, size=min(20, len(others)), replace=False)
        ctx_prog[c, markers] *= rng.uniform(3.0, 10.0, len(markers))
    return ctx_prog


def _targets(rng, n_genes: int, pool, n_targets: int) -> np.ndarray:
    """A log2 fold change per gene: ``n_targets`` genes of ``pool`` moved by 1 to 2.5, either
    sign; the rest 0."""
    e = np.zeros(n_genes)
    t = rng.choice(pool, size=n_targets, replace=False)
    e[t] = rng.uniform(1.0, 2.5, n_targets) * rng.choice([-1.0, 1.0], n_targets)
    return e


def _draw_cells(rates, contexts, conditions, effect, n_cells, genes_per_cell, seed):
    """Counts of ``n_cells`` cells per (context, condition), their ``(condition, context)``
    and the planted log2 fold change of each ``"condition|context"``. ``rates`` holds each
    context's unperturbed rates; the library size gives about ``genes_per_cell`` detected
    genes in a control cell."""
    rates0 = rates / rates.sum(axis=1, keepdims=True)
    depth = _depth(rates0, genes_per_cell)
    n_genes = rates.shape[1]
    blocks, obs, truth = [], [], {}
    for c, ctx in enumerate(contexts):
        for k, cond in enumerate(conditions):
            e = effect(cond, c)
            truth[f"{cond}|{ctx}"] = e
            r = rates[c] * np.exp2(e)
            r = r / r.sum()
            draw = np.random.default_rng([seed, 202, c, k])
            lib = depth * draw.lognormal(0.0, 0.35, n_cells)
            mu = r[None, :] * lib[:, None] * draw.gamma(2.0, 0.5, (n_cells, n_genes))
            blocks.append(sp.csr_matrix(draw.poisson(mu).astype(np.float32)))
            obs += [(cond, ctx)] * n_cells
    return sp.vstack(blocks, format="csr"), obs, truth


def _depth(rates: np.ndarray, target: float) -> float:
    """Library size at which a cell has about ``target`` detected genes on average (over
    the contexts), under the Gamma(2, 0.5)-Poisson noise used here."""
    target = min(target, 0.95 * rates.shape[1])
    lo, hi = 1.0, 1e9
    for _ in range(60):
        mid = np.sqrt(lo * hi)
        detected = float((1.0 - (1.0 + 0.5 * mid * rates) ** -2.0).sum(axis=1).mean())
        lo, hi = (mid, hi) if detected < target else (lo, mid)
    return float(mid)


__all__ = ["CONTROL", "MHC_I", "synthetic_perturbation"]
