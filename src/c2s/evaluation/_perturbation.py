"""Perturbation response: for each perturbation among the evaluated split's cells and each
context, cells predicted from that context's controls against the observed perturbed cells,
next to the baselines that are hard to beat (no change; the perturbation's mean shift in
training; for a combination, the sum of its singles' shifts). Every side is compared in the
same form: its top-n genes turned into expression by the dataset's inverse transform."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from c2s._errors import C2SError
from c2s.evaluation._generation import compared_in, sentence_expression, top_n_expression
from c2s.evaluation._options import EvalOptions

METHODS = ("c2s", "no_change", "any_perturbation", "training_shift", "sum_of_singles")
SUMMARY = ("pearson_all", "pearson_top20_de", "spearman_top20_de", "up_overlap", "down_overlap",
           "mmd", "energy_distance")  # fmt: skip


def _keys(m) -> tuple[str, str, list[str]]:
    opts = (m.config.training or {}).get("options", {})
    return (
        opts.get("perturbation_key") or "perturbation",
        str(opts.get("control_value") or "control"),
        list(opts.get("context") or ["cell_type"]),
    )


def _dense(X) -> np.ndarray:
    return np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float64)


def perturbation(m, ds, o: EvalOptions, plot_dir, res) -> dict:
    pk, cv, ctx_cols = _keys(m)
    missing = [c for c in [pk, *ctx_cols] if c not in ds.obs_columns]
    if missing:
        raise C2SError(f"The dataset has no {missing} column(s) for perturbation evaluation.")
    inv, n = compared_in(
        m, ds, o, "Perturbations are compared on expression: fit an inverse transform first."
    )
    X, cs = top_n_expression(ds, o.split, n, inv)
    Xtr, cs_tr = top_n_expression(ds, "train", n, inv)
    obs, obs_tr = _labels(cs.obs, pk, ctx_cols), _labels(cs_tr.obs, pk, ctx_cols)
    is_ctrl = (obs["pert"] == cv).to_numpy()
    if not is_ctrl.any():
        raise C2SError(f"The {o.split!r} cells have no controls ({pk} == {cv!r}) to predict from.")
    perts = sorted(set(obs["pert"][~is_ctrl]))
    controls = cs.take(np.flatnonzero(is_ctrl))
    Xp, pred_pert, pred_ctx = _predicted(m, ds, controls, perts, ctx_cols, o, n, inv)
    shifts = _training_shifts(Xtr, obs_tr, cv)
    rows = []
    for p in perts:
        for c in sorted(set(obs["ctx"][obs["pert"] == p])):
            seen = (obs["pert"] == p).to_numpy() & (obs["ctx"] == c).to_numpy()
            ctl = is_ctrl & (obs["ctx"] == c).to_numpy()
            if seen.sum() < 2 or ctl.sum() < 1:
                continue
            # the change is measured from every control of the context (evaluated and
            # training ones): a handful of held-out controls would put their own noise into
            # both the observed and the predicted change, and correlate them for free
            ctl_tr = (obs_tr["pert"] == cv).to_numpy() & (obs_tr["ctx"] == c).to_numpy()
            reference = np.vstack([_dense(X[ctl]), _dense(Xtr[ctl_tr])])
            predicted = _dense(Xp[(pred_pert == p) & (pred_ctx == c)])
            sides = _sides(p, c, reference, predicted, shifts)
            rng = np.random.default_rng([o.seed, len(rows)])
            for name, r in _scores(reference, _dense(X[seen]), sides, rng, o.seed):
                rows.append(_row(p, c, name, (p, None) in shifts, int(seen.sum()), r))
    table = pd.DataFrame(rows)
    if plot_dir is not None and len(table):
        table.to_csv(plot_dir / "perturbation.csv", index=False)
        res["plots"]["perturbation_table"] = "perturbation.csv"
    return _summary(table, n, perts, shifts)


def _predicted(m, ds, controls, perts, ctx_cols, o: EvalOptions, n: int, inv):
    """The model's predictions from every evaluated control, under every perturbation: their
    expression and, per predicted cell, its perturbation and its control's context."""
    from c2s.tl import perturb

    kw = {**o.verb_kw(), **o.sampling_kw(), "n_genes": n, "n_samples": o.n_samples}
    with warnings.catch_warnings():  # held-out ones are new by design; the report says so
        warnings.filterwarnings("ignore", message="Perturbations the model never saw")
        pred = perturb(controls, m, perts, perturbation_key=None, seed=o.seed, inverse=inv, **kw)
    Xp = sentence_expression(pred, ds.vocab, inv)
    pred_ctx = _contexts(pred.obs, ctx_cols)  # each predicted cell keeps its control's obs
    return Xp, pred.obs["perturbation"].astype(str).to_numpy(), pred_ctx


def _sides(p: str, c: str, reference, predicted, shifts: dict) -> dict:
    """The cells compared with the observed ones for perturbation ``p`` in context ``c``: the
    model's, and each baseline that applies. A baseline shifts every control of the context
    (``reference``): its change is the shift itself, without the noise of the few held-out
    controls the model predicts from."""
    sides = {"c2s": predicted, "no_change": reference}
    generic = shifts.get(("*", c), shifts.get(("*", None)))
    if generic is not None:  # what any perturbation does here, on average
        sides["any_perturbation"] = reference + generic
    shift = shifts.get((p, c), shifts.get((p, None)))
    if shift is not None:
        sides["training_shift"] = reference + shift
    parts = p.split("+")
    if len(parts) > 1 and all((q, None) in shifts for q in parts):
        singles = [shifts.get((q, c), shifts[(q, None)]) for q in parts]
        sides["sum_of_singles"] = reference + sum(singles)
    return sides


def _scores(reference, observed, sides: dict, rng, seed: int):
    """(name, metrics) of each side. Distances between sets of cells depend on their sizes
    (the V-statistics count each cell with itself): every side's are computed on the same
    number of cells, a seeded draw of the larger ones."""
    from c2s.metrics import perturbation_metrics

    n_eq = min(len(P) for P in sides.values())
    for name, P in sides.items():
        r = perturbation_metrics(reference, observed, P, top_n=20, n_overlap_genes=50, seed=seed)
        if len(P) > n_eq >= 2:
            sub = P[np.sort(rng.choice(len(P), n_eq, replace=False))]
            d = perturbation_metrics(reference, observed, sub, seed=seed)
            r["mmd"], r["energy_distance"] = d.get("mmd"), d.get("energy_distance")
        yield name, r


def _contexts(obs: pd.DataFrame, ctx_cols: list[str]) -> np.ndarray:
    return obs[ctx_cols].astype(str).agg("|".join, axis=1).to_numpy()


def _labels(obs: pd.DataFrame, pk: str, ctx_cols: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"pert": obs[pk].astype(str).to_numpy(), "ctx": _contexts(obs, ctx_cols)})


def _training_shifts(Xtr, obs_tr: pd.DataFrame, cv: str) -> dict:
    """Mean shift from the same context's controls of every perturbation seen in training,
    per context, and pooled over contexts (key ``(perturbation, None)``); and of all
    perturbed training cells together (key ``("*", context)``)."""
    out: dict = {}
    ctrl = (obs_tr["pert"] == cv).to_numpy()
    for p in sorted(set(obs_tr["pert"][~ctrl])):
        per = []
        for c in sorted(set(obs_tr["ctx"])):
            at = (obs_tr["pert"] == p).to_numpy() & (obs_tr["ctx"] == c).to_numpy()
            ct = ctrl & (obs_tr["ctx"] == c).to_numpy()
            if at.any() and ct.any():
                d = _dense(Xtr[at]).mean(0) - _dense(Xtr[ct]).mean(0)
                out[(p, c)] = d
                per.append(d)
        if per:
            out[(p, None)] = np.mean(per, axis=0)
    for c in sorted(set(obs_tr["ctx"])):  # all perturbed cells against the controls
        at, ct = ~ctrl & (obs_tr["ctx"] == c).to_numpy(), ctrl & (obs_tr["ctx"] == c).to_numpy()
        if at.any() and ct.any():
            out[("*", c)] = _dense(Xtr[at]).mean(0) - _dense(Xtr[ct]).mean(0)
    return out


def _row(p, c, method, seen, n_obs, r) -> dict:
    return {
        "perturbation": p,
        "context": c,
        "method": method,
        "seen_in_training": seen,
        "n_observed": n_obs,
        "pearson_all": r["all_genes"]["pearson"],
        "pearson_top20_de": r["top20_de"]["pearson"],
        "spearman_top20_de": r["top20_de"]["spearman"],
        "kendall_top20_de": r["top20_de"]["kendall_tau"],
        "sign_agreement_top20_de": r["top20_de"]["sign_agreement"],
        "up_overlap": r["top50_up_overlap"],
        "down_overlap": r["top50_down_overlap"],
        "mmd": r.get("mmd"),
        "energy_distance": r.get("energy_distance"),
    }


def _summary(table: pd.DataFrame, n: int, perts, shifts) -> dict:
    out: dict = {
        "n_genes": n,
        "representation": f"top {n} genes, expression from the dataset's inverse transform",
        "perturbations": list(perts),
        "unseen": sorted({p for p in perts if (p, None) not in shifts}),
        "n_rows": int(len(table) and table[table["method"] == "c2s"].shape[0]),
        "methods": {},
    }
    for name in METHODS:
        t = table[table["method"] == name] if len(table) else table
        if not len(t):
            continue
        entry = {k: _mean(t[k]) for k in SUMMARY}
        unseen = t[~t["seen_in_training"]]
        if len(unseen):
            entry["unseen"] = {k: _mean(unseen[k]) for k in SUMMARY}
        entry["n_rows"] = len(t)
        out["methods"][name] = entry
    return out


def _mean(col: pd.Series) -> float | None:
    """The mean over the rows where the metric is defined; None where it never is (the
    correlations of "no change", whose change is zero)."""
    x = col.astype(float).to_numpy()
    return float(x[~np.isnan(x)].mean()) if (~np.isnan(x)).any() else None
