"""c2s info DATASET"""

from __future__ import annotations

import sys

from c2s.cli import _flags as flags
from c2s.cli._common import emit


def register(sub) -> None:
    flags.add_command(sub, "info", run=run, help="summarize a c2s dataset")


def _human(info: dict, inverse: str) -> str:
    L = info["lengths"] or {}
    lines = [
        f"dataset     {info['path']}",
        f"cells       {info['n_cells']}  (shards: {info['n_shards']})",
        f"genes       {info['n_genes']}",
        f"sentence    mean {L.get('mean', 0):.1f}  min {L.get('min')}  median {L.get('median')}  "
        f"max {L.get('max')}  empty {L.get('n_empty')}  top_k {info['top_k']}",
        f"values      {'stored' if info['has_values'] else 'not stored'}",
        f"obs columns {', '.join(info['obs_columns']) or '-'}",
        f"split       {info['split']}",
        f"source      {info['source']}",
    ]
    lines.append(f"inverse     {inverse}")
    return "\n".join(lines)


def _inverse(info: dict) -> str:
    """The fitted inverse model in one line; an entry c2s cannot use is an error (it would
    fail every command that reconstructs expression)."""
    from c2s._errors import C2SError
    from c2s.inverse import load_inverse

    inv = info.get("inverse")
    if not inv:
        return "not fitted (c2s inverse fit DATASET)"
    try:
        name = load_inverse(inv).name
    except (C2SError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise C2SError(
            f"{info['path']}/c2s_dataset.json holds an inverse model c2s cannot read "
            f"({type(e).__name__}: {e}); fit it again: c2s inverse fit {info['path']}"
        ) from None
    m = (inv.get("heldout_metrics") or {}).get(inv.get("selected", name))
    try:
        return (
            f"{name}  held-out R^2 {m['r2']:.3f}  Pearson {m['pearson']:.3f}  "
            f"Spearman {m['spearman']:.3f}"
        )
    except (KeyError, TypeError, ValueError):  # a fit stored without (usable) metrics
        return f"{name}  (no held-out metrics recorded)"


def run(args) -> int:
    from c2s.io import read_dataset

    ds = read_dataset(args.dataset)
    info = ds.info()
    inverse = _inverse(info)  # checked with --json too
    if not args.check:
        emit(info, args.json, _human(info, inverse))
        return 0
    report = ds.check()
    info["check"] = report
    if report["ok"]:
        human = (
            _human(info, inverse) + f"\ncheck       ok: every file read, {report['n_cells']} cells"
        )
    else:
        human = (
            _human(info, inverse)
            + "\ncheck       DAMAGED:\n"
            + "\n".join(f"  - {p}" for p in report["problems"])
        )
    emit(info, args.json, human)
    if report["ok"]:
        return 0
    n = len(report["problems"])
    print(
        f"error: {ds.path} is damaged ({n} problem{'s' * (n > 1)}); convert it again.",
        file=sys.stderr,
    )
    return 2
