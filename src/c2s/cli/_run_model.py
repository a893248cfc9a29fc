"""c2s predict | embed | generate | perturb | describe MODEL [INPUT] --out OUT

INPUT is an ``.h5ad``, a c2s dataset directory (``--split`` to pick one split) or a TileDB-SOMA
experiment (``--obs-filter`` to pick cells; results keep ``soma_joinid``); OUT is an
``.h5ad`` (the input's cells with the results in ``obs``/``obsm``) or a ``.csv`` (one row per
cell). ``--json`` prints a summary: cells, seconds, cells/s.
"""

from __future__ import annotations

import time
from pathlib import Path

from c2s._anndata import is_anndata
from c2s.cli import _flags as flags
from c2s.cli._common import emit

SUFFIXES = (".h5ad", ".csv")
HELP = {
    "predict": "predict cell types (or tissues) with a model",
    "embed": "embed cells with a model's hidden states",
    "generate": "generate cells conditioned on labels",
    "perturb": "predict perturbed cells from control cells",
    "describe": "describe groups of cells in words",
}


def register(sub) -> None:
    """One command per verb, its flags built from the verb's signature (so its defaults are
    the verb's; tests/cli checks that they agree)."""
    from c2s import tl

    runs = {
        "predict": run_predict,
        "embed": run_embed,
        "generate": run_generate,
        "perturb": run_perturb,
        "describe": run_describe,
    }
    for name, text in HELP.items():
        flags.add_command(sub, name, verb=getattr(tl, name), run=_launched(runs[name]), help=text)


# -- plumbing ---------------------------------------------------------------------------------
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
    """Check --out before any work, load the model, read the input (the verb refuses the
    flags choosing cells that do not apply to it)."""
    from c2s.model import C2SModel

    out = _check_out(args)
    model = C2SModel.from_pretrained(args.model, device=args.device)
    if not with_input:
        return out, model, None
    data = _read_input(args)
    if is_anndata(data) and "soma_joinid" in data.obs.columns:
        args.soma_joinids = data.obs["soma_joinid"]  # CSV results carry it too
    return out, model, data


def _read_input(args):
    """An AnnData (an .h5ad file, or a SOMA experiment read as the SOMA flags say) or a
    C2SDataset."""
    from c2s._errors import C2SError
    from c2s.io import is_soma, read_soma

    soma = {k: getattr(args, k) for k in ("x_name", "obs_filter", "var_filter")}
    if is_soma(args.input):
        adata = read_soma(
            args.input,
            measurement=args.measurement,
            x_name=soma["x_name"],
            obs_value_filter=soma["obs_filter"],
            var_value_filter=soma["var_filter"],
            var_names=args.var_names,
        )
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
    from c2s.io import read_dataset

    return read_dataset(path)


def _write(out: Path, args, *, adata=None, frame=None) -> None:
    """Write --out: ``frame`` as a CSV, or as .h5ad ``adata`` (or, without one, an AnnData
    without X whose obs is ``frame``)."""
    from c2s._atomic import atomic_file
    from c2s.io import write_h5ad

    if getattr(args, "quiet_rank", False):
        return  # another process of this launch writes it
    # the temporary name keeps the suffix
    with atomic_file(out, overwrite=args.overwrite, inputs=_inputs(args)) as tmp:
        if out.suffix == ".csv":
            joinids = getattr(args, "soma_joinids", None)
            if joinids is not None and "soma_joinid" not in frame.columns:
                frame = frame.assign(soma_joinid=joinids.reindex(frame.index).to_numpy())
            frame.to_csv(tmp, index_label="cell_id")
        else:
            write_h5ad(adata if adata is not None else _anndata_of(frame), tmp)


def _anndata_of(frame=None, result=None):
    """An AnnData without X for results that have no AnnData of their own (dataset input):
    obs is ``frame``, or ``result`` written as the verb writes it into an AnnData; text
    columns as str."""
    import anndata as ad
    import pandas as pd

    if result is None:
        adata = ad.AnnData(obs=frame.copy())
    else:
        adata = ad.AnnData(obs=pd.DataFrame(index=result.index))
        result.write(adata)
    for c in adata.obs.columns:
        if adata.obs[c].dtype == object:
            adata.obs[c] = adata.obs[c].astype(str)
    return adata


def _summary(n: int, seconds: float, out: Path, **extra) -> tuple[dict, str]:
    rate = n / seconds if seconds else 0.0
    d = {"cells": n, "seconds": round(seconds, 3), "cells_per_s": rate, "out": str(out), **extra}
    human = f"{n} cells in {seconds:.1f} s ({rate:.1f} cells/s) -> {out}"
    return d, human


# -- verbs ------------------------------------------------------------------------------------------
def run_predict(args) -> int:
    from c2s.tl import predict

    out, model, data = _setup(args)
    t0 = time.perf_counter()
    result = predict(data, model, inplace=False, **flags.verb_kwargs(args))
    seconds = time.perf_counter() - t0
    col = _label_col(args.task)
    if is_anndata(data):
        result.write(data)  # the AnnData keeps its cells, with the results
        frame, adata = result.obs_frame(), data
        predicted, truth = data.obs[args.key_added], data.obs.get(col)
    else:  # a dataset's results: one row per cell, the probabilities as columns too
        frame, adata = result.to_frame(), None
        if out.suffix == ".h5ad":
            adata = _anndata_of(result=result)
        predicted, truth = result.labels, _dataset_truth(data, args.split, col, result.index)
    _write(out, args, adata=adata, frame=frame)
    extra = {}
    if truth is not None:
        import numpy as np

        pred = np.asarray(predicted).astype(str)
        extra["accuracy"] = float(np.mean(pred == np.asarray(truth, dtype=str)))
    d, human = _summary(len(result.index), seconds, out, **extra)
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

    out, model, data = _setup(args)
    t0 = time.perf_counter()
    result = embed(data, model, inplace=False, **flags.verb_kwargs(args))
    seconds = time.perf_counter() - t0
    adata = None
    if is_anndata(data):
        result.write(data)
        adata = data
    elif out.suffix == ".h5ad":
        adata = _anndata_of(result=result)
    _write(out, args, adata=adata, frame=result.to_frame())
    d, human = _summary(len(result.index), seconds, out, dimensions=result.X.shape[1])
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


def run_generate(args) -> int:
    from c2s._errors import C2SError
    from c2s.tl import generate

    out, model, _ = _setup(args, with_input=False)
    col = _label_col(args.task)
    labels = args.labels or (model.config.labels.get(col) if col else None)
    if not labels:
        raise C2SError("Name the labels to generate cells for: --labels A B ...")
    t0 = time.perf_counter()
    adata = generate(model, labels, **flags.verb_kwargs(args))
    return _cells_out(args, out, adata, time.perf_counter() - t0)


def run_perturb(args) -> int:
    from c2s.tl import perturb

    out, model, data = _setup(args)
    t0 = time.perf_counter()
    adata = perturb(data, model, args.perturbations, **flags.verb_kwargs(args))
    return _cells_out(args, out, adata, time.perf_counter() - t0)


def run_describe(args) -> int:
    from c2s.tl import describe

    out, model, data = _setup(args)
    t0 = time.perf_counter()
    frame = describe(data, model, **flags.verb_kwargs(args))
    n_cells = int(frame["cells"].map(len).sum())
    frame["cells"] = frame["cells"].map(" ".join)
    _write(out, args, frame=frame)
    d, human = _summary(n_cells, time.perf_counter() - t0, out, groups=len(frame))
    _emit(args, d, human)
    return 0
