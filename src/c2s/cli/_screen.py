"""c2s screen MODEL CONTROLS --perturbations ... --context-key COL --program ... --out DIR"""

from __future__ import annotations

import time
from pathlib import Path

from c2s.cli._common import add_json, emit
from c2s.cli._run_model import _none_or_str


def register(sub) -> None:
    p = sub.add_parser(
        "screen",
        help="rank perturbations by their predicted effect on a gene programme, per context",
        description="The dual-context virtual screen: every perturbation is predicted from the "
        "control cells of each context; the read-out is the change of a gene programme's score "
        "against the controls. Writes screen.csv, report.md and screen.png to --out.",
    )
    p.add_argument("model", help="model directory or hub id")
    p.add_argument("input", help=".h5ad file or c2s dataset directory with control cells")
    p.add_argument("--out", required=True, help="directory to create")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--perturbations", nargs="+", help="perturbation names")
    what.add_argument("--perturbations-file", help="a file with one perturbation per line")
    prog = p.add_mutually_exclusive_group(required=True)
    prog.add_argument("--program", nargs="+", metavar="GENE", help="the programme's genes")
    prog.add_argument("--program-file", help="a file with one programme gene per line")
    p.add_argument("--context-key", required=True, help="obs column holding the context")
    p.add_argument("--contexts", nargs="+", help="contexts to compare (split: first - second)")
    p.add_argument(
        "--perturbation-key",
        type=_none_or_str,
        default="perturbation",
        help="obs column whose --control-value marks the controls; 'none': every cell is one",
    )
    p.add_argument("--control-value", default="control")
    p.add_argument("--n-samples", type=int, default=5, help="predicted cells per control")
    p.add_argument("--n-genes", type=int, help="genes per sentence (default: the model's)")
    p.add_argument("--split", choices=["train", "validation", "test"], help="dataset split")
    p.add_argument("--raw", action="store_true", help=".h5ad input: rank adata.raw.X")
    p.add_argument("--layer", help=".h5ad input: rank this layer")
    p.add_argument("--var-names", help=".h5ad input: var column holding the gene names")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top", type=int, default=8, help="hits labelled in the plot and report")
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail (instead of warning) on a model not trained for perturbations or a "
        "perturbation it never saw",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    add_json(p)
    p.set_defaults(run=run)


def _lines(path: str, what: str) -> list[str]:
    from c2s._errors import C2SError

    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        text = None
    except OSError as e:
        raise C2SError(f"Cannot read the {what} file {path!r}: {e.strerror or e}.") from e
    if text is None or "\x00" in text:
        raise C2SError(
            f"The {what} file {path!r} is not a text file; give one name per line (UTF-8 text)."
        )
    items = [x for x in (line.strip() for line in text.splitlines()) if x and x[0] != "#"]
    if not items:
        raise C2SError(f"The {what} file {path!r} lists nothing (one name per line).")
    return items


def run(args) -> int:
    from c2s._atomic import atomic_dir
    from c2s._errors import C2SError
    from c2s.cli._run_model import _read_input
    from c2s.model import C2SModel
    from c2s.tl import screen

    if args.top < 0:
        raise C2SError(f"--top must be 0 or more (the hits to label), got {args.top}.")

    perts = args.perturbations or _lines(args.perturbations_file, "perturbations")
    program = args.program or _lines(args.program_file, "programme")
    out = Path(args.out)
    with atomic_dir(
        out, overwrite=args.overwrite, kind="screen", inputs=[args.model, args.input]
    ) as tmp:
        model = C2SModel.from_pretrained(args.model, device=args.device)
        data = _read_input(args)
        t0 = time.perf_counter()
        table = screen(
            data, model, perts, context_key=args.context_key, program=program,
            contexts=args.contexts, perturbation_key=args.perturbation_key,
            control_value=args.control_value, n_samples=args.n_samples, n_genes=args.n_genes, seed=args.seed,
            batch_size=args.batch_size, split=args.split, layer=args.layer, use_raw=args.raw,
            var_names=args.var_names, strict=args.strict,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        info = table.attrs["c2s"]
        table.to_csv(Path(tmp) / "screen.csv", index_label="perturbation")
        _plot(table, info["contexts"], args.top, Path(tmp) / "screen.png")
        (Path(tmp) / "report.md").write_text(_report(table, info, args.top, seconds))
    n = info["n_predicted_cells"]
    summary = {
        "out": str(out), "perturbations": len(table), "contexts": info["contexts"],
        "predicted_cells": n, "seconds": round(seconds, 3), "cells_per_s": n / seconds,
        "top": table.head(args.top).index.tolist(),
    }  # fmt: skip
    human = (
        f"screened {len(table)} perturbations in {info['contexts']} ({n} predicted cells, "
        f"{n / seconds:.1f} cells/s); top by context split: "
        f"{', '.join(table.head(args.top).index)} -> {out}"
    )
    emit(summary, args.json, human)
    return 0


def _plot(table, contexts, top, path) -> None:
    from c2s.pl import save_figure, screen_scatter

    try:
        save_figure(screen_scatter(table, contexts, top=top), path)
    except ImportError as e:  # matplotlib is optional: the table and report still come
        import warnings

        warnings.warn(f"no screen.png: {e}", stacklevel=2)


def _report(table, info, top, seconds) -> str:
    a, b = info["contexts"][:2]
    lines = [
        "# Virtual screen",
        "",
        f"Programme ({len(info['program'])} genes): {', '.join(info['program'])}. Controls' "
        f"programme score: {a} {info['control_score'][a]:.4f}, {b} "
        f"{info['control_score'][b]:.4f}. {info['n_samples']} predicted cells per control and "
        f"perturbation, {info['n_genes']} genes each ({info['n_predicted_cells']} cells in "
        f"{seconds:.1f} s). Effects are predicted programme score minus the controls', with "
        "95% bootstrap intervals; the split is the first context's effect minus the second's.",
        "",
        f"| perturbation | effect in {a} [95%] | effect in {b} [95%] | split | rank by split |",
        "|---|---|---|---|---|",
    ]
    for name, r in table.head(top).iterrows():
        lines.append(
            f"| {name} | {r[f'effect_{a}']:.4f} [{r[f'low_{a}']:.4f}, {r[f'high_{a}']:.4f}] | "
            f"{r[f'effect_{b}']:.4f} [{r[f'low_{b}']:.4f}, {r[f'high_{b}']:.4f}] | "
            f"{r['split']:.4f} | {int(r['rank_split'])} |"
        )
    lines += ["", "![effect in each context](screen.png)", "", "All rows: screen.csv.", ""]
    return "\n".join(lines)
