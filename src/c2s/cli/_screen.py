"""c2s screen MODEL CONTROLS --perturbations ... --context-key COL --program ... --out DIR"""

from __future__ import annotations

from pathlib import Path

from c2s.cli import _flags as flags
from c2s.cli._common import emit


def register(sub) -> None:
    from c2s.tl import screen

    flags.add_command(
        sub,
        "screen",
        verb=screen,
        run=run,
        help="rank perturbations by their predicted effect on a gene programme, per context",
        description="The dual-context virtual screen: every perturbation is predicted from the "
        "control cells of each context; the read-out is the change of a gene programme's score "
        "against the controls. Writes screen.csv, report.md and screen.png to --out.",
    )


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
    from c2s._atomic import check_output
    from c2s._errors import C2SError
    from c2s.cli._run_model import _read_input
    from c2s.model import C2SModel
    from c2s.tl import screen

    if args.top < 0:
        raise C2SError(f"--top must be 0 or more (the hits to label), got {args.top}.")
    perts = args.perturbations or _lines(args.perturbations_file, "perturbations")
    program = args.program or _lines(args.program_file, "programme")
    inputs = [args.model, args.input]
    check_output(args.out, overwrite=args.overwrite, kind="screen", inputs=inputs)
    model = C2SModel.from_pretrained(args.model, device=args.device)
    data = _read_input(args)
    result = screen(data, model, perts, **flags.verb_kwargs(args, program=program))
    out = result.write(args.out, top=args.top, overwrite=args.overwrite, inputs=inputs)
    info, seconds, top = result.info, result.seconds, result.top(args.top)
    n = info["n_predicted_cells"]
    summary = {
        "out": str(out),
        "perturbations": len(result.table),
        "contexts": info["contexts"],
        "predicted_cells": n,
        "seconds": round(seconds, 3),
        "cells_per_s": n / seconds,
        "top": top.index.tolist(),
    }
    human = (
        f"screened {len(result.table)} perturbations in {info['contexts']} ({n} predicted "
        f"cells, {n / seconds:.1f} cells/s); top by context split: {', '.join(top.index)} "
        f"-> {out}"
    )
    emit(summary, args.json, human)
    return 0
