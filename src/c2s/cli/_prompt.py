"""c2s prompt DATASET --task T"""

from __future__ import annotations

from c2s.cli import _flags as flags
from c2s.cli._common import emit


def register(sub) -> None:
    from c2s.prompts import Renderer

    flags.add_command(
        sub,
        "prompt",
        verb=Renderer,
        run=run,
        help="print rendered prompts of a task, exactly as a model sees them",
        description="Render a few examples of a prompt task from a c2s dataset.",
    )


def run(args) -> int:
    import itertools

    from c2s._errors import C2SError
    from c2s.io import read_dataset
    from c2s.prompts import Renderer

    if args.n < 1:
        raise C2SError(f"--n must be at least 1 (the examples to print), got {args.n}.")
    if args.seed < 0:
        raise C2SError(f"--seed must be a non-negative integer, got {args.seed}.")
    ds = read_dataset(args.dataset)
    constants = {"organism": args.organism} if args.organism else {}
    renderer = Renderer(args.task, **flags.verb_kwargs(args, constants=constants))
    cs = ds.sentences(split=args.split, n_genes=args.n_genes, values=False)
    examples = list(itertools.islice(renderer.examples(cs), args.n))
    out = {
        "task": args.task,
        "profile": args.profile,
        "examples": [
            {
                "prompt": e.prompt,
                "response": e.response,
                "cells": [str(cs.obs.index[i]) for i in e.cells],
            }
            for e in examples
        ],
    }
    human = "\n\n".join(
        f"--- example {i + 1} (cells: {', '.join(c)})\n[prompt]\n{e['prompt']}\n[response]\n{e['response']}"
        for i, (e, c) in enumerate((e, e["cells"]) for e in out["examples"])
    )
    emit(out, args.json, human)
    return 0
