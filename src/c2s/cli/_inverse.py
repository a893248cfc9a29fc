"""c2s inverse fit|eval|reconstruct DATASET"""

from __future__ import annotations

from pathlib import Path

from c2s.cli import _flags as flags
from c2s.cli._common import emit


def register(sub) -> None:
    from c2s.inverse import fit_inverse, reconstruct

    p = sub.add_parser("inverse", help="fit, evaluate and apply rank -> expression models")
    isub = p.add_subparsers(dest="inverse_command", metavar="ACTION")
    isub.required = True
    flags.add_command(
        isub,
        "fit",
        key="inverse fit",
        verb=fit_inverse,
        run=run_fit,
        help="fit on the train split, select by held-out R^2, store in the dataset",
    )
    flags.add_command(
        isub,
        "eval",
        key="inverse eval",
        verb=fit_inverse,
        run=run_eval,
        help="held-out R^2 / Pearson / Spearman of every model",
    )
    flags.add_command(
        isub,
        "reconstruct",
        key="inverse reconstruct",
        verb=reconstruct,
        run=run_reconstruct,
        help="expression from sentences, written as .h5ad",
    )


def _fit(args, **given):
    """The dataset, its cells and the inverse models fitted to them (``given``: keywords of
    ``fit_inverse`` the command fixes)."""
    from c2s.inverse import fit_inverse
    from c2s.io import read_dataset

    ds = read_dataset(args.dataset)
    if not ds.has_values:
        from c2s._errors import C2SError

        raise C2SError(
            f"{ds.path} stores no expression values (converted with --no-values or imported "
            "from the reference layout), so no inverse model can be fitted to it."
        )
    cs = ds.sentences(obs_columns=[])
    return ds, cs, fit_inverse(cs, **flags.verb_kwargs(args, **given))


def _table(metrics: dict, selected: str | None) -> str:
    rows = [f"{'model':<10} {'R^2':>7} {'Pearson':>8} {'Spearman':>9}"]
    for name, m in metrics.items():
        mark = "  <- selected" if name == selected else ""
        rows.append(f"{name:<10} {m['r2']:>7.4f} {m['pearson']:>8.4f} {m['spearman']:>9.4f}{mark}")
    return "\n".join(rows)


def run_fit(args) -> int:
    ds, cs, fit = _fit(args)
    ds.update_meta(inverse=fit.to_dict())
    out = {"dataset": str(ds.path), **fit.to_dict()}
    out.pop("params")
    if args.plot_dir:
        from c2s.pl import inverse_plots

        out["plots"] = inverse_plots(cs, fit, args.plot_dir)
    emit(
        out,
        args.json,
        _table(fit.metrics, fit.selected) + f"\nstored '{fit.selected}' in {ds.path}",
    )
    return 0


def run_eval(args) -> int:
    ds, _, fit = _fit(args, model="auto")
    out = {
        "dataset": str(ds.path),
        "metrics": fit.metrics,
        "best": fit.selected,
        "n_train_cells": fit.n_train_cells,
        "n_heldout_cells": fit.n_heldout_cells,
    }
    emit(out, args.json, _table(fit.metrics, fit.selected))
    return 0


def run_reconstruct(args) -> int:
    from c2s._atomic import atomic_file, check_output
    from c2s._errors import C2SError
    from c2s.inverse import load_inverse, reconstruct
    from c2s.io import read_dataset

    if Path(args.out).suffix != ".h5ad":
        raise C2SError(f"The output must be an .h5ad file, not {args.out!r}.")
    check_output(args.out, overwrite=args.overwrite, inputs=[args.dataset])
    ds = read_dataset(args.dataset)
    if not ds.meta.get("inverse"):
        raise C2SError(
            f"{ds.path} has no fitted inverse model; run `c2s inverse fit {ds.path}` first."
        )
    model = load_inverse(ds)
    adata = reconstruct(
        ds.sentences(split=args.split, values=False), model, **flags.verb_kwargs(args)
    )
    from c2s.io import write_h5ad

    with atomic_file(args.out, overwrite=args.overwrite, inputs=[args.dataset]) as tmp:
        write_h5ad(adata, tmp)
    out = {"out": args.out, "n_cells": adata.n_obs, "n_genes": adata.n_vars, "model": model.name}
    emit(out, args.json, f"wrote {adata.n_obs} x {adata.n_vars} reconstructed cells to {args.out}")
    return 0
