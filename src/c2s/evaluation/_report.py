"""The evaluation's outputs: ``metrics.json``, ``report.md`` and the headline table."""

from __future__ import annotations

import json
from pathlib import Path

from c2s.evaluation._embedding import KNN_K


def write_outputs(res: dict, out: Path) -> None:
    """``metrics.json`` and ``report.md`` for an evaluation result, in the directory ``out``."""
    (out / "metrics.json").write_text(
        json.dumps(res, indent=2, sort_keys=True, default=float) + "\n"
    )
    (out / "report.md").write_text("# c2s evaluation\n\n" + report_sections(res))


def _ci(interval) -> str:
    return f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else ""


def _sampling(s: dict) -> str:
    parts = [f"T={s.get('temperature', 1.0):g}"]
    parts += [f"{k}={s[k]:g}" for k in ("top_k", "top_p") if s.get(k) is not None]
    return ", ".join(parts)


def headline_table(res: dict) -> str:
    """The C2S-vs-baselines table (annotation and generation) as Markdown."""
    lines = []
    parts = [res.get("annotation"), *res.get("other_label_tasks", {}).values()]
    for a in filter(None, parts):
        lines += _annotation_table(a)
    g = res.get("generation")
    if g:
        lines += [
            f"| generation ({g['n_cells']} cells, {g['n_genes']} genes each) | "
            f"k-NN@{KNN_K} accuracy | MMD | Frechet (PCA) | energy | Wasserstein |",
            "|---|---|---|---|---|---|",
        ]
        for name, title in (
            ("c2s", f"C2S model (sampled, {_sampling(g['c2s'].get('sampling', {}))})"),
            ("class_mean", "class-mean cell"),
            ("resampled_real", "resampled real training cells"),
        ):
            r = g[name]
            knn = r["knn_accuracy"]  # keys are numbers, or strings once read from JSON
            lines.append(
                f"| {title} | {knn[KNN_K] if KNN_K in knn else knn[str(KNN_K)]:.3f} | "
                f"{r['mmd']:.4f} | {r['frechet_pca']:.2f} | {r['energy_distance']:.3f} | "
                f"{r.get('wasserstein', float('nan')):.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


ROWS = (
    ("c2s", "C2S model (label scoring)"),
    ("c2s_content_free", "C2S model (label scoring, content-free calibration)"),
    ("c2s_validation_calibrated", "C2S model (label scoring, biases fitted on validation cells)"),
    ("c2s_length_norm", "C2S model (label scoring, per-token)"),
    ("c2s_probe", "C2S model (linear probe on its embeddings)"),
    ("logistic_regression", "logistic regression (CellTypist-style)"),
    ("knn_pca", "k-NN on PCA (k=15)"),
)


def _annotation_table(a: dict) -> list[str]:
    what = f"{a['task']}, groups of cells" if a.get("multi_cell") else a["task"]
    lines = [
        f"| {what} ({a['n_eval']} held-out cells) | accuracy | macro-F1 | balanced accuracy |",
        "|---|---|---|---|",
    ]
    for name, title in ROWS:
        if name not in a:
            continue
        r = a[name]
        ci = r.get("ci95", {})
        lines.append(
            f"| {title} | {r['accuracy']:.3f}{_ci(ci.get('accuracy'))} | "
            f"{r['macro_f1']:.3f}{_ci(ci.get('macro_f1'))} | {r['balanced_accuracy']:.3f} |"
        )
    return [*lines, "", "Brackets: 95% bootstrap intervals over the held-out cells.", ""]


PERTURBATION_ROWS = (
    ("c2s", "C2S model"),
    ("no_change", "no change (the control cells; a change of zero correlates with nothing)"),
    ("any_perturbation", "the mean shift of all perturbed training cells"),
    ("training_shift", "the perturbation's mean shift in training"),
    ("sum_of_singles", "combinations: sum of the singles' shifts"),
)


# the perturbation table's columns after the method: (metric, digits shown)
PERTURBATION_COLUMNS = (
    ("pearson_top20_de", 3), ("pearson_all", 3), ("up_overlap", 2), ("down_overlap", 2),
    ("mmd", 4), ("energy_distance", 3),
)  # fmt: skip


def _num(x, digits: int) -> str:
    return "-" if x is None or x != x else f"{x:.{digits}f}"


def _perturbation_table(pt: dict) -> str:
    lines = [
        f"| perturbation response ({pt['n_rows']} perturbation x context pairs; unseen in "
        f"training: {', '.join(pt['unseen']) or 'none'}) | Pearson delta, top-20 DE | "
        "Pearson delta, all genes | top-50 up overlap | top-50 down overlap | MMD | energy |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, title in PERTURBATION_ROWS:
        r = pt["methods"].get(name)
        if r is None:
            continue
        cells = [_num(r.get(k), digits) for k, digits in PERTURBATION_COLUMNS]
        lines.append(f"| {title} ({r['n_rows']} pairs) | " + " | ".join(cells) + " |")
    note = (
        "Each pair: the observed perturbed cells of one context against cells predicted from "
        f"that context's held-out controls ({pt['representation']}); a baseline shifts every "
        "control of the context, and is listed only where it applies (a shift needs the "
        "perturbation, or both singles, in training). Per-pair rows: perturbation.csv.\n"
    )
    return "\n".join([*lines, "", note])


def report_sections(res: dict) -> str:
    """Markdown for the evaluation part of a report (tables and plot links)."""
    parts = [headline_table(res)]
    g = res.get("generation")
    if g:
        c = g["c2s"]
        parts.append(
            f"Generated genes: {c['valid_gene_rate']:.1%} valid, {c['unique_gene_rate']:.1%} unique "
            f"within each cell; overlap of each type's top {g['n_genes']} genes with the held-out "
            f"cells': C2S {c['top_gene_overlap']:.1%}, resampled real cells "
            f"{g['resampled_real']['top_gene_overlap']:.1%}. Distances are computed in a PCA "
            f"space fit on the held-out cells ({g['c2s']['pca_components']} components); lower is "
            "closer. The class-mean cell sits at each type's centre with no spread; resampled "
            "real cells are what a perfect generator would score.\n"
        )
    pt = res.get("perturbation")
    if pt and pt.get("methods"):
        parts.append(_perturbation_table(pt))
    d = res.get("description")
    if d:
        sim = d["text_similarity"]
        sim = f"cosine {sim['cosine_mean']:.3f} ({sim['model']})" if isinstance(sim, dict) else sim
        parts.append(
            f"Descriptions of {d['n_groups']} held-out groups against their reference texts: "
            f"shared-word F1 {d['token_f1']:.3f}; text similarity {sim}.\n"
        )
    e = res.get("embedding", {})
    if f"knn{KNN_K}_accuracy" in e:
        parts.append(
            f"C2S embeddings ({e['dimensions']} dimensions): a {KNN_K}-NN classifier on the "
            f"training cells' embeddings labels the held-out cells with accuracy "
            f"{e[f'knn{KNN_K}_accuracy']:.3f}.\n"
        )
    used = res.get("dataset", {}).get("cells_used", {})
    if any(v.split(" of ")[0] != v.split(" of ")[-1] for v in used.values()):
        parts.append(
            "Cells used (a seeded sample, stratified by cell type, bounds time and memory; "
            "`max_cells` / `max_train_cells`): "
            + ", ".join(f"{k} {v}" for k, v in used.items())
            + ".\n"
        )
    r = res.get("reconstruction", {})
    if "r2" in r:
        parts.append(
            f"Inverse transform (`{r['model']}`) on the held-out cells' expressed genes: "
            f"R^2 {r['r2']:.3f}, Pearson {r['pearson']:.3f}, Spearman {r['spearman']:.3f}.\n"
        )
    if res.get("skipped"):
        parts.append(
            "Not scored: " + "; ".join(f"`{k}` ({v})" for k, v in res["skipped"].items()) + ".\n"
        )
    for name, file in res.get("plots", {}).items():
        parts.append(f"![{name.replace('_', ' ')}]({file})")
    return "\n".join(parts) + "\n"
