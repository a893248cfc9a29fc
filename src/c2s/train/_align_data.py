"""What alignment trains on: prompts from the task registry, each with the columns the
rewards read (TRL passes a dataset's columns to every reward function), and the generation
settings that keep a gene task's completions to distinct genes the model knows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from c2s._deprecate import renamed
from c2s._errors import C2SError


@renamed(ds="dataset")
def alignment_prompts(
    dataset,
    task: str,
    *,
    n_genes: int,
    split: str = "train",
    limit: int | None = None,
    seed: int = 0,
    profile: str = "compat",
    organism: str | None = None,
    perturbation_key: str = "perturbation",
    control_value: str = "control",
    context: Sequence[str] | None = None,
    program: Sequence[str] | None = None,
):
    """A Hugging Face ``datasets.Dataset`` of prompts for ``task`` over ``split`` of
    ``dataset`` (a :class:`~c2s.io.C2SDataset`; ``ds=``, its old name, still works for one
    release, with a warning).

    Columns: ``prompt``, ``task``, and what a reward compares the completion with:
    ``label`` (label tasks: the obs value), ``reference_cell`` (cell generation: the cell the
    prompt was made from, ``n_genes`` genes), ``control_cell`` / ``perturbed_cell`` /
    ``perturbation`` (perturbation prediction: the pair of the same context) or
    ``reference_text`` (text tasks); ``program`` (one list of genes per row) when given.
    ``limit`` keeps a seeded sample of that many prompts.
    """
    from datasets import Dataset

    from c2s.prompts import Renderer, sentence_texts
    from c2s.train._examples import needed_columns

    rows = dataset.split_indices().get(split)
    if rows is None or len(rows) == 0:
        raise C2SError(f"The dataset has no {split!r} cells to build prompts from.")
    r = Renderer(
        task,
        profile=profile,
        n_genes=n_genes,
        seed=seed,
        constants={"organism": organism} if organism else None,
        perturbation_key=perturbation_key,
        control_value=control_value,
        context_keys=context or ("cell_type",),
    )
    cols = needed_columns(dataset, [r])
    cs = dataset.sentences(rows=rows, n_genes=n_genes, values=False, obs_columns=cols)
    plan = r.plan(cs, None)
    if limit is not None and limit < len(plan):
        keep = np.sort(np.random.default_rng([seed, 11]).choice(len(plan), limit, replace=False))
        plan = [plan[i] for i in keep]
    cols: dict[str, list] = {"prompt": [], "task": []}
    t = r.task
    for cells, template in plan:
        ex = r.render(cs, cells, template)
        cols["prompt"].append(ex.prompt)
        cols["task"].append(t.name)
        if t.answer == "label":
            cols.setdefault("label", []).append(str(cs.obs[t.label].iat[cells[0]]))
        elif t.answer == "text":
            cols.setdefault("reference_text", []).append(ex.response)
        elif t.kind == "pair":
            control, perturbed = sentence_texts(cs, cells, n_genes)
            cols.setdefault("control_cell", []).append(control)
            cols.setdefault("perturbed_cell", []).append(perturbed)
            pert = str(cs.obs[perturbation_key].iat[cells[-1]])
            cols.setdefault("perturbation", []).append(pert)
        else:
            cols.setdefault("reference_cell", []).append(sentence_texts(cs, cells[:1], n_genes)[0])
    if program:
        cols["program"] = [[str(g) for g in program]] * len(cols["prompt"])
    if not cols["prompt"]:
        raise C2SError(f"No {task!r} prompts could be built from the {split!r} cells.")
    return Dataset.from_dict(cols)


def gene_generation_kwargs(tokenizer, genes: Sequence[str]) -> dict | None:
    """Generation settings that let a completion hold only distinct genes of ``genes`` (then
    the closing period and end of sequence): ``suppress_tokens`` for every other token and
    ``no_repeat_ngram_size=1``. They are plain ``GenerationConfig`` fields, so TRL's
    ``GRPOConfig(generation_kwargs=...)`` takes them. This needs a tokenizer with one token
    per gene (c2s's own); for a sub-word tokenizer (a released checkpoint) it returns None and
    the gene-validity reward has to do the work."""
    ids = {}
    for g in genes:
        enc = tokenizer(" " + str(g), add_special_tokens=False)["input_ids"]
        if len(enc) != 1:
            return None
        ids[str(g)] = enc[0]
    allowed = set(ids.values())
    for extra in (".", " ."):
        enc = tokenizer(extra, add_special_tokens=False)["input_ids"]
        if len(enc) == 1:
            allowed.add(enc[0])
    allowed |= {t for t in (tokenizer.eos_token_id, tokenizer.pad_token_id) if t is not None}
    suppress = [i for i in range(len(tokenizer)) if i not in allowed]
    return {"suppress_tokens": suppress, "no_repeat_ngram_size": 1}
