"""c2s predict | embed | generate | perturb | describe MODEL [INPUT] --out OUT

INPUT is an ``.h5ad``, a c2s dataset directory (``--split`` to pick one split) or a TileDB-SOMA
experiment (``--obs-filter`` to pick cells; results keep ``soma_joinid``); OUT is an
``.h5ad`` (the input's cells with the results in ``obs``/``obsm``) or a ``.csv`` (one row per
cell). ``--json`` prints a summary: cells, seconds, cells/s.
"""

from __future__ import annotations

import time
from pathlib import Path

from c2s.cli._common import add_json, emit

SUFFIXES = (".h5ad", ".csv")


def _common(p, *, with_input: bool = True, batch_size: int = 8) -> None:
    p.add_argument("model", help="model directory or hub id")
    if with_input:
        p.add_argument("input", help=".h5ad file, c2s dataset directory or SOMA experiment")
    p.add_argument("--out", required=True, help="output .h5ad or .csv")
    if with_input:
        p.add_argument("--split", choices=["train", "validation", "test"], help="dataset split")
        p.add_argument("--raw", action="store_true", help=".h5ad input: rank adata.raw.X")
        p.add_argument("--layer", help=".h5ad input: rank this layer")
        p.add_argument("--var-names", help=".h5ad input: var column holding the gene names")
        soma = p.add_argument_group("TileDB-SOMA input (results keep soma_joinid)")
        soma.add_argument("--measurement", default="RNA", help="measurement (default RNA)")
        soma.add_argument("--x-name", help="X layer (default: raw where it exists)")
        soma.add_argument("--obs-filter", metavar="EXPR", help="cells to run on (a value filter)")
        soma.add_argument("--var-filter", metavar="EXPR", help="genes to use (a value filter)")
    p.add_argument("--n-genes", type=int, help="genes per sentence (default: the model's)")
    p.add_argument("--organism", help="organism for prompts (default: the model's / obs)")
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    add_json(p)


def _sampling(p, *, temperature: float = 1.0, top_k: bool = True) -> None:
    p.add_argument("--temperature", type=float, default=temperature, help="0 for greedy decoding")
    if top_k:
        p.add_argument("--top-k", type=int)
    p.add_argument("--top-p", type=float)
    p.add_argument("--seed", type=int, default=0)


def _strict(p) -> None:
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail (instead of warning) on a task the model was not trained for, or labels "
        "(perturbations) it never saw",
    )


# Defaults below are the c2s.tl verbs' own (tests/cli checks that they agree).
def register(sub) -> None:
    p = sub.add_parser("predict", help="predict cell types (or tissues) with a model")
    _common(p)
    p.add_argument("--task", default="cell_type_prediction")
    p.add_argument(
        "--mode", default="auto", choices=["auto", "score", "constrained", "free", "probe"]
    )
    p.add_argument("--labels", nargs="+", help="candidate labels (default: the model's)")
    p.add_argument(
        "--calibration",
        default="none",
        choices=["none", "content_free", "validation"],
        help="score mode: subtract the labels' scores after an empty cell (content_free) or "
        "add the per-label biases fitted on validation cells in training (validation)",
    )
    p.add_argument(
        "--length-norm", action="store_true", help="score mode: mean log-probability per token"
    )
    p.add_argument(
        "--top-k", type=int, default=1, help="also write the K most probable labels (score, probe)"
    )
    p.add_argument("--key-added", default="c2s_prediction")
    p.add_argument("--group-by", nargs="+", metavar="COL", help="multi-cell tasks: grouping")
    p.add_argument("--max-new-tokens", type=int, help="free mode: token budget")
    _strict(p)
    p.set_defaults(run=_launched(run_predict))

    p = sub.add_parser("embed", help="embed cells with a model's hidden states")
    _common(p)
    p.add_argument("--task", default="cell_type_prediction", help="single-cell prompt task")
    p.add_argument("--pool", default="genes", choices=["genes", "prompt", "last"])
    p.add_argument("--hidden-layer", type=int, default=-1, help="model layer (-1: the last)")
    p.add_argument("--key-added", default="X_c2s")
    p.set_defaults(run=_launched(run_embed))

    p = sub.add_parser("generate", help="generate cells conditioned on labels")
    _common(p, with_input=False)
    p.add_argument(
        "--task",
        default="cell_type_generation",
        help="cell_type_generation, or tissue_conditional_generation (--n-cells per prompt)",
    )
    p.add_argument("--labels", nargs="+", help="labels to condition on (default: the model's)")
    p.add_argument("--n-per-label", type=int, default=10, help="cells (or groups) per label")
    p.add_argument("--n-cells", type=int, default=5, help="multi-cell tasks: cells per group")
    _sampling(p, temperature=0.7)
    _strict(p)
    p.set_defaults(run=_launched(run_generate))

    p = sub.add_parser("perturb", help="predict perturbed cells from control cells")
    _common(p)
    p.add_argument("--perturbations", nargs="+", required=True)
    p.add_argument(
        "--perturbation-key",
        type=_none_or_str,
        default="perturbation",
        help="obs column whose --control-value marks the controls; 'none': every cell is one",
    )
    p.add_argument("--control-value", default="control", help="the controls' value")
    p.add_argument(
        "--n-samples", type=int, default=1, help="predicted cells per control and perturbation"
    )
    _sampling(p)
    _strict(p)
    p.set_defaults(run=_launched(run_perturb))

    p = sub.add_parser("describe", help="describe groups of cells in words")
    _common(p, batch_size=4)
    p.add_argument("--group-by", nargs="+", metavar="COL")
    p.add_argument("--max-cells", type=int, default=20)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--backend", default="hf", choices=["hf", "vllm"], help="vllm: CUDA only")
    _sampling(p, temperature=0.0, top_k=False)
    _strict(p)
    p.set_defaults(run=_launched(run_describe))


# -- plumbing ---------------------------------------------------------------------------------
def _none_or_str(value: str) -> str | None:
    return None if value.lower() == "none" else value


def _launched(run):
    """Under torchrun / accelerate launch: split the cells across the processes; the first
    writes the output and prints the summary."""
    import functools

    @functools.wraps(run)
    def wrapped(args) -> int:
        from c2s.model import across_ranks, launched_world_size

        if launched_world_size() == 1:
            return run(args)
        with across_ranks() as (rank, _):
            args.quiet_rank = rank != 0
            return run(args)

    return wrapped


def _emit(args, d: dict, human: str) -> None:
    if not getattr(args, "quiet_rank", False):
        emit(d, args.json, human)


def _check_out(args) -> Path:
    from c2s._atomic import check_output
    from c2s._errors import C2SError

    out = Path(args.out)
    if out.suffix not in SUFFIXES:
        raise C2SError(f"--out must end in .h5ad or .csv, not {out.name!r}.")
    return check_output(out, overwrite=args.overwrite, inputs=_inputs(args))


def _inputs(args) -> list:
    """The paths this command reads (an output must not be, contain or lie inside one)."""
    return [args.model, getattr(args, "input", None)]


def _setup(args, *, with_input: bool = True):
    """Check --out before any work, load the model, read the input; plus the keyword
    arguments that choose the cells (the verb refuses those that do not apply)."""
    from c2s.model import C2SModel

    out = _check_out(args)
    model = C2SModel.from_pretrained(args.model, device=args.device)
    if not with_input:
        return out, model, None, {}
    data = _read_input(args)
    if _is_anndata(data) and "soma_joinid" in data.obs.columns:
        args.soma_joinids = data.obs["soma_joinid"]  # CSV results carry it too
    kw = {
        "split": args.split, "layer": args.layer, "use_raw": args.raw,
        "var_names": args.var_names,
    }  # fmt: skip
    return out, model, data, kw


def _read_input(args):
    """An AnnData (for .h5ad input) or a C2SDataset."""
    from c2s._errors import C2SError
    from c2s.io import is_soma, read_soma

    # commands without the SOMA flags (screen) read a SOMA experiment with the defaults
    soma = {k: getattr(args, k, None) for k in ("x_name", "obs_filter", "var_filter")}
    if is_soma(args.input):
        adata = read_soma(
            args.input, measurement=getattr(args, "measurement", "RNA"), x_name=soma["x_name"],
            obs_value_filter=soma["obs_filter"], var_value_filter=soma["var_filter"],
            var_names=args.var_names,
        )  # fmt: skip
        args.var_names = None  # applied already
        return adata
    if any(soma.values()):
        raise C2SError("--obs-filter, --var-filter and --x-name apply to SOMA experiments.")
    path = Path(args.input)
    if path.suffix == ".h5ad":
        import anndata as ad

        if not path.exists():
            raise C2SError(f"{path} does not exist.")
        try:
            return ad.read_h5ad(path)
        except OSError as e:  # not HDF5, truncated, unreadable
            raise C2SError(f"Cannot read {path} as an .h5ad file: {e}") from e
    from c2s.io import C2SDataset

    return C2SDataset(path)


def _is_anndata(data) -> bool:
    return hasattr(data, "obs_names")


def _write(out: Path, args, *, adata=None, frame=None) -> None:
    from c2s._atomic import atomic_file

    if getattr(args, "quiet_rank", False):
        return  # another process of this launch writes it
    # the temporary name keeps the suffix
    with atomic_file(out, overwrite=args.overwrite, inputs=_inputs(args)) as tmp:
        if out.suffix == ".csv":
            joinids = getattr(args, "soma_joinids", None)
            if joinids is not None and "soma_joinid" not in frame.columns:
                frame = frame.assign(soma_joinid=joinids.reindex(frame.index).to_numpy())
            frame.to_csv(tmp, index_label="cell_id")
            return
        if adata is None:  # dataset input: the results as obs of an AnnData without X
            import anndata as ad

            probs = [c for c in frame.columns if c.startswith("p_")]
            obs = frame.drop(columns=probs)
            for c in obs.columns:
                if obs[c].dtype == object:
                    obs[c] = obs[c].astype(str)
            adata = ad.AnnData(obs=obs)
            if probs:  # as tl.predict writes them: an array, its labels in uns
                key = args.key_added
                adata.obsm[f"{key}_probabilities"] = frame[probs].to_numpy()
                adata.uns[key] = {**frame.attrs.get("c2s", {}), "labels": [c[2:] for c in probs]}
        from c2s.io import write_h5ad

        write_h5ad(adata, tmp)


def _summary(n: int, seconds: float, out: Path, **extra) -> tuple[dict, str]:
    rate = n / seconds if seconds else 0.0
    d = {"cells": n, "seconds": round(seconds, 3), "cells_per_s": rate, "out": str(out), **extra}
    human = f"{n} cells in {seconds:.1f} s ({rate:.1f} cells/s) -> {out}"
    return d, human


# -- verbs ------------------------------------------------------------------------------------------
def run_predict(args) -> int:
    from c2s.tl import predict

    out, model, data, data_kw = _setup(args)
    t0 = time.perf_counter()
    kw = {
        "task": args.task, "mode": args.mode, "labels": args.labels, "key_added": args.key_added,
        "calibration": args.calibration, "length_norm": args.length_norm, "top_k": args.top_k,
        "n_genes": args.n_genes, "organism": args.organism, "group_by": args.group_by,
        "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
        "strict": args.strict, **data_kw,
    }  # fmt: skip
    if _is_anndata(data):
        predict(data, model, **kw)
        frame = data.obs[[c for c in data.obs.columns if c.startswith(args.key_added)]]
        truth = data.obs.get(_label_col(args.task))
    else:
        frame = predict(data, model, inplace=False, **kw)
        truth = _dataset_truth(data, args.split, _label_col(args.task), frame.index)
    seconds = time.perf_counter() - t0
    if out.suffix == ".csv":
        _write(out, args, frame=frame)
    else:
        adata = data if _is_anndata(data) else None
        _write(out, args, adata=adata, frame=frame)
    extra = {}
    if truth is not None:
        import numpy as np

        pred = frame[args.key_added].astype(str).to_numpy()
        extra["accuracy"] = float(np.mean(pred == np.asarray(truth, dtype=str)))
    d, human = _summary(len(frame), seconds, out, **extra)
    if "accuracy" in extra:
        human += f"\naccuracy against the data's labels: {extra['accuracy']:.3f}"
    _emit(args, d, human)
    return 0


def _label_col(task: str) -> str | None:
    from c2s.prompts import get_task

    return get_task(task).label


def _dataset_truth(ds, split, col, index):
    if col is None or col not in ds.obs_columns:
        return None
    obs = ds.obs([col])
    if split:
        obs = obs[obs["split"] == split]
    return obs.loc[index, col].to_numpy()


def run_embed(args) -> int:
    from c2s.tl import embed

    out, model, data, data_kw = _setup(args)
    t0 = time.perf_counter()
    kw = {
        "key_added": args.key_added, "pool": args.pool, "hidden_layer": args.hidden_layer,
        "task": args.task, "n_genes": args.n_genes, "organism": args.organism,
        "batch_size": args.batch_size, **data_kw,
    }  # fmt: skip
    if _is_anndata(data):
        import pandas as pd

        embed(data, model, **kw)
        X = data.obsm[args.key_added]
        frame = pd.DataFrame(
            X, index=data.obs_names, columns=[f"c2s_{j}" for j in range(X.shape[1])]
        )
        adata = data
    else:
        frame = embed(data, model, inplace=False, **kw)
        adata = None
    seconds = time.perf_counter() - t0
    if out.suffix == ".h5ad" and adata is None:
        import anndata as ad

        adata = ad.AnnData(obs=frame.iloc[:, :0].copy())
        adata.obsm[args.key_added] = frame.to_numpy()
    _write(out, args, adata=adata, frame=frame)
    d, human = _summary(len(frame), seconds, out, dimensions=frame.shape[1])
    _emit(args, d, human)
    return 0


def _cells_out(args, out: Path, adata, seconds: float) -> int:
    import numpy as np

    _write(out, args, adata=adata, frame=adata.obs)
    sents = adata.obs["c2s_sentence"].str.split()
    valid = set(adata.var["display_name"].astype(str))
    n = int(sum(len(s) for s in sents))
    extra = {
        "valid_gene_rate": sum(g in valid for s in sents for g in s) / n if n else None,
        "unique_gene_rate": float(np.mean([len(set(s)) / len(s) for s in sents if len(s)])),
    }
    d, human = _summary(adata.n_obs, seconds, out, **extra)
    _emit(args, d, human)
    return 0


def _sampling_kw(args) -> dict:
    kw = {"temperature": args.temperature, "top_p": args.top_p, "seed": args.seed}
    if hasattr(args, "top_k"):
        kw["top_k"] = args.top_k
    return kw


def run_generate(args) -> int:
    from c2s._errors import C2SError
    from c2s.tl import generate

    out, model, _, _ = _setup(args, with_input=False)
    col = _label_col(args.task)
    labels = args.labels or (model.config.labels.get(col) if col else None)
    if not labels:
        raise C2SError("Name the labels to generate cells for: --labels A B ...")
    t0 = time.perf_counter()
    adata = generate(
        model, labels, task=args.task, n_per_label=args.n_per_label, n_cells=args.n_cells,
        n_genes=args.n_genes, organism=args.organism, batch_size=args.batch_size,
        strict=args.strict, **_sampling_kw(args),
    )  # fmt: skip
    return _cells_out(args, out, adata, time.perf_counter() - t0)


def run_perturb(args) -> int:
    from c2s.tl import perturb

    out, model, data, data_kw = _setup(args)
    t0 = time.perf_counter()
    adata = perturb(
        data, model, args.perturbations, perturbation_key=args.perturbation_key,
        control_value=args.control_value, n_samples=args.n_samples,
        n_genes=args.n_genes, organism=args.organism,
        batch_size=args.batch_size, strict=args.strict, **_sampling_kw(args), **data_kw,
    )  # fmt: skip
    return _cells_out(args, out, adata, time.perf_counter() - t0)


def run_describe(args) -> int:
    from c2s.tl import describe

    out, model, data, data_kw = _setup(args)
    t0 = time.perf_counter()
    frame = describe(
        data, model, group_by=args.group_by, n_genes=args.n_genes, organism=args.organism,
        max_cells=args.max_cells, max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size, backend=args.backend, strict=args.strict,
        **_sampling_kw(args), **data_kw,
    )  # fmt: skip
    n_cells = int(frame["cells"].map(len).sum())
    frame["cells"] = frame["cells"].map(" ".join)
    _write(out, args, frame=frame)
    d, human = _summary(n_cells, time.perf_counter() - t0, out, groups=len(frame))
    _emit(args, d, human)
    return 0
