"""c2s prompt DATASET --task T"""

from __future__ import annotations

from c2s.cli._common import add_json, emit


def register(sub) -> None:
    p = sub.add_parser(
        "prompt",
        help="print rendered prompts of a task, exactly as a model sees them",
        description="Render a few examples of a prompt task from a c2s dataset.",
    )
    p.add_argument("dataset", help="c2s dataset directory")
    p.add_argument("--task", required=True, help="task name (see the error for the list)")
    p.add_argument("--profile", default="compat", choices=["compat", "paraphrase"])
    p.add_argument("--n-genes", type=int, default=200, help="genes per cell sentence")
    p.add_argument("--n", type=int, default=3, help="examples to print")
    p.add_argument("--split", choices=["train", "validation", "test"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--organism", help="value for {organism} when obs has no such column")
    p.add_argument("--group-by", nargs="+", metavar="COL", help="multi-cell grouping columns")
    p.add_argument("--min-cells", type=int, default=5)
    p.add_argument("--max-cells", type=int, default=20)
    p.add_argument("--perturbation-key", default="perturbation")
    p.add_argument("--control-value", default="control")
    p.add_argument("--context", nargs="+", default=["cell_type"], help="pairing context columns")
    add_json(p)
    p.set_defaults(run=run)


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
    renderer = Renderer(
        args.task,
        profile=args.profile,
        n_genes=args.n_genes,
        seed=args.seed,
        constants=constants,
        group_by=args.group_by,
        min_cells=args.min_cells,
        max_cells=args.max_cells,
        perturbation_key=args.perturbation_key,
        control_value=args.control_value,
        context_keys=args.context,
    )
    cs = ds.sentences(split=args.split, top_k=args.n_genes, values=False)
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
