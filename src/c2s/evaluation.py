"""``c2s evaluate``: a model against cheap baselines on a dataset's held-out cells.

For each task the model was trained for (its ``c2s_config.json``), on the same split:

- a label task (``cell_type_prediction``): the model's predictions (label scoring) next to
  logistic regression and k-NN on PCA, both fit on the training cells' stored expression;
- ``cell_type_generation``: as many cells per label as the held-out split has, compared with
  the held-out cells next to two references built from the training cells, the class-mean
  cell and resampled real cells. Every side is put in the same form first: its top-n genes
  (n = the model's genes per sentence) turned into expression by the dataset's inverse
  transform, so generated and real cells differ only in which genes they name and in what
  order;
- always: k-NN accuracy of the model's embeddings (held-out cells classified by their
  training neighbours) and the inverse transform's reconstruction of the held-out cells.

Tasks it cannot score yet (perturbation, descriptions) are listed under ``skipped``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from c2s._errors import C2SError

KNN_K = 10  # the k reported in headline tables (all of metrics.KS are in metrics.json)


class _Clock:
    def __init__(self, verbose: bool, prefix: str = "evaluate"):
        self.times: dict[str, float] = {}
        self.verbose, self.prefix = verbose, prefix

    def run(self, name: str, fn):
        import sys

        if self.verbose:
            print(f"[{self.prefix}] {name} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        out = fn()
        self.times[name] = round(time.perf_counter() - t, 3)
        if self.verbose:
            print(
                f"[{self.prefix}] {name} done in {self.times[name]:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        return out


def _label_tasks(model, tasks) -> list[str]:
    from c2s.prompts import Renderer

    out = []
    for t in tasks:
        try:
            task = Renderer(t, profile=model.config.profile).task
        except C2SError:
            continue
        if task.answer == "label" and task.kind == "single":
            out.append(t)
    return out


def evaluate(
    model,
    dataset,
    out: str | os.PathLike | None = None,
    *,
    split: str = "test",
    batch_size: int = 16,
    seed: int = 0,
    tasks=None,
    n_genes: int | None = None,
    organism: str | None = None,
    overwrite: bool = False,
    progress_bar: bool | None = None,
    verbose: bool = False,
    clock: _Clock | None = None,
) -> dict:
    """Evaluate ``model`` (a :class:`~c2s.model.C2SModel` or a path) on ``dataset``'s
    ``split`` against the baselines; with ``out``, also write ``metrics.json``, ``report.md``
    and PNG plots there (atomically; an existing directory needs ``overwrite``).

    ``tasks``, ``n_genes`` and ``organism`` default to the model's ``c2s_config.json``; a
    released checkpoint has none, so give them (labels then come from the training cells).

    Returns the metrics dictionary (keys ``annotation``, ``generation``, ``embedding``,
    ``reconstruction``, ``skipped``, ``timing_s``, ...; baselines under their own names).
    """
    from c2s._atomic import atomic_dir
    from c2s.io import C2SDataset, read_dataset
    from c2s.model import C2SModel

    m = model if isinstance(model, C2SModel) else C2SModel.from_pretrained(model)
    ds = dataset if isinstance(dataset, C2SDataset) else read_dataset(dataset)
    idx = ds.split_indices()
    if len(idx.get(split, [])) == 0:
        raise C2SError(
            f"The dataset has no {split!r} cells (splits: "
            f"{ {k: len(v) for k, v in idx.items()} }); pass split= one that has cells."
        )
    if len(idx.get("train", [])) == 0:
        raise C2SError("The dataset has no training cells to fit the baselines on.")
    clock = clock or _Clock(verbose)
    opts = _Options(split, batch_size, seed, progress_bar, tasks, n_genes, organism)
    if out is None:
        return _evaluate(m, ds, None, opts, clock)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        res = _evaluate(m, ds, Path(tmp), opts, clock)
        write_outputs(res, Path(tmp))
    return res


@dataclass
class _Options:
    split: str = "test"
    batch_size: int = 16
    seed: int = 0
    progress_bar: bool | None = None
    tasks: list | None = None
    n_genes: int | None = None
    organism: str | None = None

    def verb_kw(self) -> dict:
        """Keyword arguments every model verb takes."""
        kw = {"batch_size": self.batch_size, "progress_bar": self.progress_bar}
        if self.n_genes:
            kw["n_genes"] = self.n_genes
        if self.organism:
            kw["organism"] = self.organism
        return kw


def _evaluate(m, ds, plot_dir, o: _Options, clock) -> dict:
    tasks = list(o.tasks or m.config.tasks or [])
    if not tasks:
        raise C2SError(
            "The model's c2s_config.json names no tasks (a released checkpoint?): pass tasks= "
            "(--tasks cell_type_prediction cell_type_generation), with n_genes= and organism=."
        )
    res: dict = {
        "model": {
            "path": str(getattr(m, "name_or_path", "") or ""),
            "tasks": tasks,
            "n_genes": o.n_genes or m.config.n_genes,
            "architecture": m.model.config.model_type,
            "parameters": int(sum(p.numel() for p in m.model.parameters())),
        },
        "dataset": {"path": str(ds.path), "n_cells": ds.n_cells},
        "split": o.split,
        "skipped": {},
        "plots": {},
    }
    label_tasks = _label_tasks(m, tasks)
    for t in label_tasks[:1]:
        res["annotation"] = clock.run(
            "annotation", lambda t=t: _annotation(m, ds, t, o, plot_dir, res)
        )
    for t in label_tasks[1:]:
        res["skipped"][t] = "only the first label task is scored"
    if "cell_type_generation" in tasks:
        res["generation"] = clock.run("generation", lambda: _generation(m, ds, o, plot_dir, res))
    for t in tasks:
        if t not in label_tasks and t != "cell_type_generation":
            res["skipped"][t] = "not scored by c2s evaluate yet (use c2s.metrics directly)"
    res["embedding"] = clock.run("embedding", lambda: _embedding(m, ds, o, plot_dir, res))
    res["reconstruction"] = clock.run(
        "reconstruction", lambda: _reconstruction(ds, o.split, o.seed, plot_dir, res)
    )
    if plot_dir is not None:
        _loss_plot(m, plot_dir, res)
    res["timing_s"] = dict(clock.times)
    return res


# -- annotation ----------------------------------------------------------------------------------
def _annotation(m, ds, task, o: _Options, plot_dir, res) -> dict:
    from c2s.baselines import expression, knn_pca, logistic_regression
    from c2s.metrics import annotation_metrics
    from c2s.prompts import Renderer
    from c2s.tl import predict

    key = Renderer(task, profile=m.config.profile).task.label
    if key not in ds.obs_columns:
        raise C2SError(f"The dataset has no {key!r} column for task {task!r}.")
    split = o.split
    labels = list(m.config.labels.get(key, [])) or sorted(
        ds.obs([key]).iloc[ds.split_indices()["train"]][key].astype(str).unique()
    )
    t = time.perf_counter()
    frame = predict(ds, m, task=task, split=split, labels=labels, **o.verb_kw())
    pred_s = time.perf_counter() - t
    truth = ds.obs([key]).loc[frame.index, key].astype(str).to_numpy()
    pred = frame["c2s_prediction"].astype(str).to_numpy()
    out = {"task": task, "label": key, "labels": labels}
    out["c2s"] = {
        **annotation_metrics(truth, pred, labels or None),
        "seconds": pred_s,
        "cells_per_s": len(pred) / pred_s,
    }
    Xtr, obs_tr = expression(ds, split="train")
    Xte, obs_te = expression(ds, split=split)
    ytr = obs_tr[key].astype(str).to_numpy()
    yte = obs_te[key].astype(str).to_numpy()
    for name, fn in (("logistic_regression", logistic_regression), ("knn_pca", knn_pca)):
        t = time.perf_counter()
        p = fn(Xtr, ytr, Xte)
        out[name] = {
            **annotation_metrics(yte, p, labels or None),
            "seconds": time.perf_counter() - t,
        }
    out["n_train"], out["n_eval"] = len(ytr), len(yte)
    if plot_dir is not None:
        frame.to_csv(plot_dir / "predictions.csv", index_label="cell_id")
        _confusion_plots(truth, pred, out, labels, plot_dir, res)
    return out


def _confusion_plots(truth, pred, out, labels, plot_dir, res):
    from c2s.pl import confusion_matrix
    from c2s.pl._inverse import _plt

    plt = _plt()
    ax = confusion_matrix(truth, pred, labels=labels or None)
    ax.set_title(f"C2S on held-out cells: accuracy {out['c2s']['accuracy']:.3f}")
    ax.figure.tight_layout()
    ax.figure.savefig(plot_dir / "confusion_matrix.png", dpi=120)
    plt.close(ax.figure)
    res["plots"]["confusion_matrix"] = "confusion_matrix.png"


# -- generation ----------------------------------------------------------------------------------
def _top_n_expression(ds, split, n, inv):
    from c2s.inverse import reconstruct

    cs = ds.sentences(split=split, top_k=n, values=False)
    return reconstruct(cs, inv).X, cs


def _generation(m, ds, o: _Options, plot_dir, res) -> dict:
    from c2s.baselines import class_mean_cells, resampled_cells
    from c2s.inverse import reconstruct
    from c2s.inverse._models import InverseModel
    from c2s.metrics import gene_uniqueness, gene_validity, generation_metrics, top_gene_overlap
    from c2s.sentences import CellSentences
    from c2s.tl import generate
    from c2s.tl._verbs import _inverse_dict

    key = "cell_type"
    inv_spec = ds.meta.get("inverse") or m.config.inverse
    if inv_spec is None:
        raise C2SError(
            "Generation is compared on expression, which needs an inverse transform: fit one "
            "with `c2s inverse fit DATASET` first."
        )
    inv = InverseModel.from_dict(_inverse_dict(inv_spec))
    split, seed = o.split, o.seed
    n = int(o.n_genes or m.config.n_genes or 100)
    real_X, real_cs = _top_n_expression(ds, split, n, inv)
    train_X, train_cs = _top_n_expression(ds, "train", n, inv)
    y_real = real_cs.obs[key].astype(str).to_numpy()
    y_train = train_cs.obs[key].astype(str).to_numpy()
    known = set(m.config.labels.get(key, [])) or set(y_train)
    keep = np.isin(y_real, sorted(known))
    real_X, y_real = real_X[keep], y_real[keep]
    counts = {lab: int(c) for lab, c in zip(*np.unique(y_real, return_counts=True), strict=True)}
    t = time.perf_counter()
    genes = None if m.config.genes else ds.vocab.display_names.tolist()
    gen = generate(m, counts, seed=seed, inverse=inv, genes=genes, **{**o.verb_kw(), "n_genes": n})
    gen_s = time.perf_counter() - t
    y_gen = gen.obs[key].astype(str).to_numpy()
    sents = gen.obs["c2s_sentence"].astype(str).tolist()
    gcs = CellSentences.from_text(sents, ds.vocab, on_unknown="drop")
    gen_X = reconstruct(gcs, inv).X
    real_sents = real_cs.to_text()
    real_sents = [s for s, k in zip(real_sents, keep, strict=True) if k]
    out = {
        "n_genes": n,
        "n_cells": len(y_gen),
        "per_label": counts,
        "representation": f"top {n} genes, expression from the dataset's inverse transform",
    }
    # one draw of training rows, used for both the cells and their sentences
    drawn = resampled_cells(np.arange(len(y_train))[:, None], y_train, y_gen, seed=seed)
    drawn = drawn[:, 0].astype(np.int64)
    sides = {
        "c2s": gen_X,
        "class_mean": class_mean_cells(train_X, y_train, y_gen),
        "resampled_real": train_X[drawn],
    }
    for name, X in sides.items():
        out[name] = generation_metrics(real_X, y_real, X, y_gen, seed=seed)
    out["c2s"].update(
        {
            "valid_gene_rate": gene_validity(sents, ds.vocab.display_names),
            "unique_gene_rate": gene_uniqueness(sents),
            "top_gene_overlap": top_gene_overlap(sents, y_gen, real_sents, y_real, n_top=n)["mean"],
            "seconds": gen_s,
            "cells_per_s": len(y_gen) / gen_s,
        }
    )
    train_sents = train_cs.to_text()
    out["resampled_real"]["top_gene_overlap"] = top_gene_overlap(
        [train_sents[i] for i in drawn], y_gen, real_sents, y_real, n_top=n
    )["mean"]
    if plot_dir is not None:
        gen.write_h5ad(plot_dir / "generated.h5ad")
        _generation_plot(real_X, y_real, gen_X, y_gen, seed, plot_dir, res)
    return out


def _generation_plot(real_X, y_real, gen_X, y_gen, seed, plot_dir, res):
    from c2s.metrics import pca_space

    f = pca_space(real_X, 30, seed)
    _umap_plot(
        np.vstack([f(real_X), f(gen_X)]),
        np.concatenate([y_real, y_gen]),
        seed,
        plot_dir / "umap_generated.png",
        markers=["real (held-out)"] * len(y_real) + ["generated"] * len(y_gen),
        title="UMAP: generated cells (dots) and held-out real cells (crosses)",
    )
    res["plots"]["umap_generated"] = "umap_generated.png"


# -- embedding and reconstruction ----------------------------------------------------------------
def _embedding(m, ds, o: _Options, plot_dir, res) -> dict:
    from sklearn.neighbors import KNeighborsClassifier

    from c2s.tl import embed

    key = "cell_type"
    split, seed = o.split, o.seed
    E = embed(ds, m, **o.verb_kw())
    out = {"dimensions": int(E.shape[1]), "n_cells": int(E.shape[0])}
    if key in ds.obs_columns:
        obs = ds.obs([key, "split"]).loc[E.index]
        tr = (obs["split"].astype(str) == "train").to_numpy()
        te = (obs["split"].astype(str) == split).to_numpy()
        y = obs[key].astype(str).to_numpy()
        X = E.to_numpy()
        clf = KNeighborsClassifier(n_neighbors=min(KNN_K, int(tr.sum()))).fit(X[tr], y[tr])
        out[f"knn{KNN_K}_accuracy"] = float(np.mean(clf.predict(X[te]) == y[te]))
        if plot_dir is not None:
            _umap_plot(X, y, seed, plot_dir / "umap_embeddings.png")
            res["plots"]["umap_embeddings"] = "umap_embeddings.png"
    return out


def _umap(X, seed: int) -> np.ndarray:
    import anndata as ad
    import scanpy as sc

    a = ad.AnnData(obsm={"X_rep": np.asarray(X)})
    sc.pp.neighbors(a, use_rep="X_rep", random_state=seed)
    sc.tl.umap(a, random_state=seed)
    return a.obsm["X_umap"]


def _umap_plot(X, groups, seed, path, markers=None, title="UMAP of C2S embeddings (all cells)"):
    from c2s.pl import embedding
    from c2s.pl._inverse import _plt

    plt = _plt()
    ax = embedding(_umap(X, seed), groups, markers=markers, title=title)
    ax.figure.tight_layout()
    ax.figure.savefig(path, dpi=120)
    plt.close(ax.figure)


def _reconstruction(ds, split, seed, plot_dir, res) -> dict:
    from c2s.inverse import evaluate as inverse_eval
    from c2s.inverse._models import InverseModel
    from c2s.tl._verbs import _inverse_dict

    spec = ds.meta.get("inverse")
    if spec is None or not ds.has_values:
        return {"skipped": "the dataset has no fitted inverse transform or no stored values"}
    inv = InverseModel.from_dict(_inverse_dict(spec))
    cs = ds.sentences(split=split)
    out = {"model": spec.get("selected", type(inv).__name__), **inverse_eval(inv, cs, seed=seed)}
    if plot_dir is not None:
        from c2s import pl
        from c2s.pl._inverse import _plt

        plt = _plt()
        ax = pl.reconstruction(cs, inv, title=f"held-out cells: R^2 {out['r2']:.3f}")
        ax.figure.savefig(plot_dir / "reconstruction_heldout.png", dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
        res["plots"]["reconstruction_heldout"] = "reconstruction_heldout.png"
    return out


def _loss_plot(m, plot_dir, res):
    path = Path(str(getattr(m, "name_or_path", "") or "")) / "train_log.json"
    if not path.is_file():
        return
    from c2s.pl import loss_curve
    from c2s.pl._inverse import _plt

    log = json.loads(path.read_text())
    plt = _plt()
    ax = loss_curve(log.get("log_history", []), title="training")
    ax.figure.tight_layout()
    ax.figure.savefig(plot_dir / "loss_curve.png", dpi=120)
    plt.close(ax.figure)
    res["plots"]["loss_curve"] = "loss_curve.png"


# -- report --------------------------------------------------------------------------------------
def write_outputs(res: dict, out_dir: Path) -> None:
    """``metrics.json`` and ``report.md`` for an evaluation result."""
    (out_dir / "metrics.json").write_text(
        json.dumps(res, indent=2, sort_keys=True, default=float) + "\n"
    )
    (out_dir / "report.md").write_text("# c2s evaluation\n\n" + report_sections(res))


def headline_table(res: dict) -> str:
    """The C2S-vs-baselines table (annotation and generation) as Markdown."""
    lines = []
    a = res.get("annotation")
    if a:
        lines += [
            f"| annotation ({a['n_eval']} held-out cells) | accuracy | macro-F1 | balanced accuracy |",
            "|---|---|---|---|",
        ]
        for name, title in (
            ("c2s", "C2S model (label scoring)"),
            ("logistic_regression", "logistic regression (CellTypist-style)"),
            ("knn_pca", "k-NN on PCA (k=15)"),
        ):
            r = a[name]
            lines.append(
                f"| {title} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | {r['balanced_accuracy']:.3f} |"
            )
        lines.append("")
    g = res.get("generation")
    if g:
        lines += [
            f"| generation ({g['n_cells']} cells, {g['n_genes']} genes each) | k-NN@{KNN_K} accuracy | MMD | scFID | energy | Wasserstein |",
            "|---|---|---|---|---|---|",
        ]
        for name, title in (
            ("c2s", "C2S model (sampled, T=1)"),
            ("class_mean", "class-mean cell"),
            ("resampled_real", "resampled real training cells"),
        ):
            r = g[name]
            lines.append(
                f"| {title} | {r['knn_accuracy'][KNN_K] if KNN_K in r['knn_accuracy'] else r['knn_accuracy'][str(KNN_K)]:.3f} | "
                f"{r['mmd']:.4f} | {r['scfid']:.2f} | {r['energy_distance']:.3f} | "
                f"{r.get('wasserstein', float('nan')):.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


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
    e = res.get("embedding", {})
    if f"knn{KNN_K}_accuracy" in e:
        parts.append(
            f"C2S embeddings ({e['dimensions']} dimensions): a {KNN_K}-NN classifier on the "
            f"training cells' embeddings labels the held-out cells with accuracy "
            f"{e[f'knn{KNN_K}_accuracy']:.3f}.\n"
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
