"""Training examples: every task's prompts over one split of a dataset, encoded and mixed by
task weight, and the evaluation sets (one per task)."""

from __future__ import annotations

import numpy as np

from c2s.encoding import IGNORE, encode_examples
from c2s.train._config import TrainConfig, task_weights


class ExampleSet:
    """Encoded examples as a map-style dataset (lists of token ids per example)."""

    def __init__(self, items: list[dict]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]

    def lengths(self) -> list[int]:
        """Tokens per example (for length-bucketed batches)."""
        return [len(it["input_ids"]) for it in self.items]


def renderer_for(task: str, cfg: TrainConfig, seed_offset: int = 0):
    from c2s.prompts import Renderer

    return Renderer(
        task,
        profile=cfg.profile,
        n_genes=cfg.n_genes,
        seed=cfg.seed + seed_offset,
        constants={"organism": cfg.organism} if cfg.organism else None,
        group_by=cfg.group_by,
        min_cells=cfg.min_cells,
        max_cells=cfg.max_cells,
        perturbation_key=cfg.perturbation_key,
        control_value=cfg.control_value,
    )


def needed_columns(ds, renderers) -> list[str]:
    cols: set[str] = set()
    for r in renderers:
        cols |= r.task.columns(r.profile)
        if r.task.label:
            cols.add(r.task.label)
        cols |= set(r.group_by or [])
        if r.task.kind == "pair":
            cols |= {r.perturbation_key, *r.context_keys}
    return [c for c in ds.obs_columns if c in cols]


def build_examples(
    ds,
    tokenizer,
    cfg: TrainConfig,
    *,
    split: str,
    max_length: int,
    limit: int | None,
    weighted: bool,
) -> tuple[list[dict], dict, dict]:
    """Encode every task's examples over ``split`` of ``ds``; mix them by weight.

    Returns (examples, stats, labels seen per column).
    """
    rows = ds.split_indices()[split]
    if len(rows) == 0:
        return [], {}, {}
    renderers = [(renderer_for(t, cfg), w) for t, w in task_weights(cfg.tasks)]
    cols = needed_columns(ds, [r for r, _ in renderers])
    cs = ds.sentences(rows=rows, top_k=cfg.n_genes, values=False, obs_columns=cols)
    variants = [cs]
    if weighted and cfg.augment:
        variants += augmented(ds, rows, cols, cfg)
    rng = np.random.default_rng([cfg.seed, 7, len(split)])
    out: list[dict] = []
    stats: dict = {"n_shortened": 0, "n_dropped": 0}
    if "organism" in cs.obs.columns:
        stats["organisms"] = sorted(cs.obs["organism"].dropna().astype(str).unique())
    labels: dict[str, set] = {}
    for ti, (renderer, weight) in enumerate(renderers):
        items = []
        for v in variants:
            its, st = encode_examples(
                renderer,
                v,
                tokenizer,
                max_length=max_length,
                loss_on_response_only=cfg.loss_on_response_only,
            )
            items += its
            stats["n_shortened"] += st.n_shortened
            stats["n_dropped"] += st.n_dropped
        col = renderer.task.label
        if col and col in cs.obs.columns:
            labels.setdefault(col, set()).update(cs.obs[col].dropna().astype(str).unique())
        for it in items:
            it["task"] = ti
        if weighted and (cfg.class_balance or 0) > 0 and renderer.task.answer == "label" and col:
            items = _balance(items, cs.obs[col].astype(str).to_numpy(), cfg.class_balance, rng)
        if weighted and weight != 1.0:
            items = _repeat(items, weight, rng)
        out += items
    if limit is not None and len(out) > limit:
        keep = np.sort(rng.choice(len(out), size=limit, replace=False))
        out = [out[i] for i in keep]
    return out, stats, {k: sorted(v) for k, v in labels.items()}


def augmented(ds, rows, cols, cfg: TrainConfig) -> list:
    """``cfg.augment`` copies of the cells: ties reordered with a new seed per copy (before
    the top genes are kept), then ``cfg.gene_dropout`` of the genes left out."""
    from c2s._errors import C2SError
    from c2s.sentences import drop_genes, shuffle_ties

    if not ds.has_values:
        raise C2SError(
            "augment needs the expression values to find tied genes, and this dataset stores "
            "none; re-convert it with values (c2s convert keeps them by default)."
        )
    full = ds.sentences(rows=rows, values=True, obs_columns=cols)
    out = []
    for c in range(1, cfg.augment + 1):
        v = shuffle_ties(full, [cfg.seed, 11, c])
        if cfg.gene_dropout:
            v = drop_genes(v, cfg.gene_dropout, [cfg.seed, 12, c])
        out.append(v.top_k(cfg.n_genes))
    return out


def _repeat(items: list[dict], weight: float, rng) -> list[dict]:
    """``weight`` copies of the items: whole repeats plus a seeded fraction."""
    whole, frac = int(weight), weight - int(weight)
    extra = rng.choice(len(items), size=round(frac * len(items)), replace=False)
    return items * whole + [items[i] for i in np.sort(extra)]


def _balance(items: list[dict], labels: np.ndarray, power: float, rng) -> list[dict]:
    """Rarer labels repeated more: each label's examples get weight
    ``(largest count / its count) ** power`` (0: as they are, 1: every label as often as the
    most frequent one; whole repeats plus a seeded fraction)."""
    per = [labels[it["cells"][0]] for it in items]
    names, counts = np.unique(per, return_counts=True)
    weight = dict(zip(names, (counts.max() / counts) ** power, strict=True))
    out = []
    for name in names:
        group = [it for it, lab in zip(items, per, strict=True) if lab == name]
        out += _repeat(group, float(weight[name]), rng)
    return out


def unk_warning(examples: list[dict], tokenizer) -> None:
    unk = tokenizer.unk_token_id
    if unk is None or not examples:
        return
    n_unk = sum(sum(1 for t in ex["input_ids"] if t == unk) for ex in examples)
    n = sum(len(ex["input_ids"]) for ex in examples)
    if n_unk:
        import warnings

        warnings.warn(
            f"{n_unk} of {n} training tokens ({n_unk / n:.2%}) are unknown to the tokenizer "
            "(<unk>): the data has genes or words the model's vocabulary lacks. Build the model "
            "from this dataset (C2SModel.from_scratch(dataset)) to cover its genes.",
            stacklevel=3,
        )


def eval_sets(evals: list[dict], names: list[str]):
    """The evaluation set (one per task when there are several, so each gets its own loss)
    and the trained-token count of each."""
    if not evals:
        return None, {}
    tokens = {
        n: sum(sum(1 for v in e["labels"][1:] if v != IGNORE) for e in evals if e["task"] == i)
        for i, n in enumerate(names)
    }
    if len(names) == 1:
        return ExampleSet(evals), tokens
    sets = {n: ExampleSet([e for e in evals if e["task"] == i]) for i, n in enumerate(names)}
    return {n: v for n, v in sets.items() if len(v)}, tokens
