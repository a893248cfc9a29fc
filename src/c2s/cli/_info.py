"""c2s info DATASET"""

from __future__ import annotations

import sys

from c2s.cli._common import add_json, emit


def register(sub) -> None:
    p = sub.add_parser("info", help="summarize a c2s dataset")
    p.add_argument("dataset", help="c2s dataset directory")
    p.add_argument(
        "--check",
        action="store_true",
        help="read every file and verify it against the metadata (exit 2 if damaged)",
    )
    add_json(p)
    p.set_defaults(run=run)


def _human(info: dict) -> str:
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
    inv = info.get("inverse")
    if inv:
        m = inv["heldout_metrics"][inv["selected"]]
        lines.append(
            f"inverse     {inv['selected']}  held-out R^2 {m['r2']:.3f}  Pearson {m['pearson']:.3f}  "
            f"Spearman {m['spearman']:.3f}"
        )
    else:
        lines.append("inverse     not fitted (c2s inverse fit DATASET)")
    return "\n".join(lines)


def run(args) -> int:
    from c2s.io import read_dataset

    ds = read_dataset(args.dataset)
    info = ds.info()
    if not args.check:
        emit(info, args.json, _human(info))
        return 0
    report = ds.check()
    info["check"] = report
    if report["ok"]:
        human = _human(info) + f"\ncheck       ok: every file read, {report['n_cells']} cells"
    else:
        human = (
            _human(info)
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
