"""Training examples: every task's prompts over one split of a dataset, encoded and mixed by
task weight, and the evaluation sets (one per task)."""

from __future__ import annotations

import functools

import numpy as np

from c2s._deprecate import renamed
from c2s._warn import warn_user
from c2s.encoding import FlatExamples, encode_flat
from c2s.train._config import TrainConfig, task_weights


class ExampleSet:
    """The training (or validation) examples as a map-style dataset over compact arrays
    (:class:`~c2s.encoding.FlatExamples`): ``index`` picks and repeats examples (weights,
    class balance, limits) without copying tokens. Item ``j`` is a dict of lists, with
    ``example`` = ``j`` (its position; the collator ignores it)."""

    def __init__(self, flat, index=None):
        self.flat = flat
        self.index = np.arange(len(flat)) if index is None else np.asarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, j):
        if isinstance(j, slice):
            return ExampleSet(self.flat, self.index[j])
        item = self.flat.item(int(self.index[j]))
        item["example"] = int(j)
        return item

    def __iter__(self):
        return (self[j] for j in range(len(self)))

    def lengths(self) -> list[int]:
        """Tokens per example (for length-bucketed batches)."""
        return self.flat.lengths()[self.index].tolist()


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
        context_keys=cfg.context or ("cell_type",),
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


@renamed(ds="dataset")
def build_examples(
    dataset,
    tokenizer,
    cfg: TrainConfig,
    *,
    split: str,
    max_length: int,
    limit: int | None,
    weighted: bool,
    part: tuple[int, int] | None = None,
    spill=None,
) -> tuple[ExampleSet, dict, dict]:
    """Encode every task's examples over ``split`` of ``dataset`` (a
    :class:`~c2s.io.C2SDataset`; ``ds=``, its old name, still works for one release, with a
    warning); mix them by weight.
    ``part=(rank, world)``: only this process's contiguous share of the cells (and of
    ``limit``). ``spill``: a directory for the tokens (memory-mapped back; see
    :func:`~c2s.encoding.encode_flat`).

    Returns (examples, stats, labels seen per column); ``stats["perturbations"]`` names the
    perturbations of the pairs, when a task pairs cells.
    """
    rows = dataset.split_indices()[split]
    renderers = [(renderer_for(t, cfg), w) for t, w in task_weights(cfg.tasks)]
    plan_rows = None  # the cells of ``cs`` that examples are built around (None: all)
    if part is not None:
        rows, plan_rows, limit = _own_share(rows, renderers, part, limit)
    if len(rows) == 0:
        return ExampleSet(FlatExamples.concat([])), {}, {}
    cols = needed_columns(dataset, [r for r, _ in renderers])
    cs = dataset.sentences(rows=rows, n_genes=cfg.n_genes, values=False, obs_columns=cols)
    variants = [cs]
    if weighted and cfg.augment:
        variants += augmented(dataset, rows, cols, cfg)
    rng = np.random.default_rng([cfg.seed, 7, len(split)])
    stats: dict = {"n_shortened": 0, "n_dropped": 0}
    if "organism" in cs.obs.columns:
        stats["organisms"] = sorted(cs.obs["organism"].dropna().astype(str).unique())
    labels: dict[str, set] = {}
    parts: list[FlatExamples] = []
    index: list[np.ndarray] = []
    n = 0
    for ti, (renderer, weight) in enumerate(renderers):
        encode = functools.partial(
            encode_flat,
            renderer,
            tokenizer=tokenizer,
            max_length=max_length,
            loss_on_response_only=cfg.loss_on_response_only,
            task=ti,
            spill=spill,
            rows=plan_rows,
        )
        flat = _encoded(encode, variants, stats)
        _seen(renderer, flat, cs, stats, labels)
        items = np.arange(len(flat))
        if weighted:
            items = _mixed(items, renderer, flat, cs, weight, cfg, rng)
        parts.append(flat)
        index.append(items + n)
        n += len(flat)
    out = ExampleSet(FlatExamples.concat(parts), np.concatenate(index))
    if limit is not None and len(out) > limit:
        out = ExampleSet(
            out.flat, out.index[np.sort(rng.choice(len(out), size=limit, replace=False))]
        )
    return out, stats, {k: sorted(v) for k, v in labels.items()}


def _own_share(rows, renderers, part: tuple[int, int], limit: int | None):
    """``(rows, plan_rows, limit)`` of process ``part = (rank, world)``: its contiguous share
    of the cells (all cells are read for paired tasks, where it plans the examples of its
    share) and of ``limit``."""
    from c2s.train._rank_data import local_rows

    limit = None if limit is None else -(-limit // part[1])
    if any(r.task.kind == "pair" for r, _ in renderers):
        # a perturbed cell draws its control from every control of its context, so all
        # cells are read; this process builds the examples of its own share
        return rows, local_rows(np.arange(len(rows)), *part), limit
    return local_rows(rows, *part), None, limit


def _encoded(encode, variants: list, stats: dict) -> FlatExamples:
    """One task's examples over every variant of the cells (the cells, then augmented
    copies), the shortened and dropped ones counted into ``stats``."""
    flats = []
    for v in variants:
        f, st = encode(v)
        flats.append(f)
        stats["n_shortened"] += st.n_shortened
        stats["n_dropped"] += st.n_dropped
    return FlatExamples.concat(flats)


def _seen(renderer, flat: FlatExamples, cs, stats: dict, labels: dict) -> None:
    """What a task's examples show the model: the perturbations of its pairs (into
    ``stats``) and the values of its label column (into ``labels``)."""
    if renderer.task.kind == "pair" and len(flat):  # the perturbed cell ends each pair
        perturbed = flat.cells[flat.cell_offsets[1:] - 1]
        names = cs.obs[renderer.perturbation_key].astype(str).to_numpy()[perturbed]
        stats["perturbations"] = sorted({*stats.get("perturbations", []), *names})
    col = renderer.task.label
    if col and col in cs.obs.columns:
        labels.setdefault(col, set()).update(cs.obs[col].dropna().astype(str).unique())


def _mixed(items, renderer, flat: FlatExamples, cs, weight: float, cfg: TrainConfig, rng):
    """A training task's examples as they are mixed in: rarer labels repeated
    (``cfg.class_balance``), then the whole set ``weight`` times."""
    col = renderer.task.label
    if (cfg.class_balance or 0) > 0 and renderer.task.answer == "label" and col:
        first = flat.cells[flat.cell_offsets[:-1]]
        per = cs.obs[col].astype(str).to_numpy()[first]
        items = _balance(items, per, cfg.class_balance, rng)
    if weight != 1.0:
        items = _repeat(items, weight, rng)
    return items


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
        out.append(v.top_genes(cfg.n_genes))
    return out


def _repeat(items: np.ndarray, weight: float, rng) -> np.ndarray:
    """``weight`` copies of the items: whole repeats plus a seeded fraction."""
    whole, frac = int(weight), weight - int(weight)
    extra = rng.choice(len(items), size=round(frac * len(items)), replace=False)
    return np.concatenate([np.tile(items, whole), items[np.sort(extra)]])


def _balance(items: np.ndarray, labels: np.ndarray, power: float, rng) -> np.ndarray:
    """Rarer labels repeated more: each label's examples get weight
    ``(largest count / its count) ** power`` (0: as they are, 1: every label as often as the
    most frequent one; whole repeats plus a seeded fraction). ``labels``: each item's."""
    names, counts = np.unique(labels, return_counts=True)
    weight = dict(zip(names, (counts.max() / counts) ** power, strict=True))
    out = [_repeat(items[labels == name], float(weight[name]), rng) for name in names]
    return np.concatenate(out) if out else items


def unk_warning(examples: ExampleSet, tokenizer) -> None:
    unk = tokenizer.unk_token_id
    if unk is None or not len(examples):
        return
    flat = examples.flat
    at = np.flatnonzero(flat.ids == unk)  # unknown tokens are few: no per-token counts
    per = np.bincount(np.searchsorted(flat.offsets, at, side="right") - 1, minlength=len(flat))
    n_unk = int(per[examples.index].sum())
    n = int(flat.lengths()[examples.index].sum())
    if n_unk:
        warn_user(
            f"{n_unk} of {n} training tokens ({n_unk / n:.2%}) are unknown to the tokenizer "
            "(<unk>): the data has genes or words the model's vocabulary lacks. Build the model "
            "from this dataset (C2SModel.from_scratch(dataset)) to cover its genes.",
        )


def eval_sets(evals: ExampleSet | None, names: list[str]):
    """The evaluation set (one per task when there are several, so each gets its own loss)
    and the trained-token count of each."""
    if evals is None or not len(evals):
        return None, {}
    task = evals.flat.task[evals.index]
    trained = evals.flat.trained_tokens()[evals.index]
    tokens = {n: int(trained[task == i].sum()) for i, n in enumerate(names)}
    if len(names) == 1:
        return evals, tokens
    sets = {n: ExampleSet(evals.flat, evals.index[task == i]) for i, n in enumerate(names)}
    return {n: v for n, v in sets.items() if len(v)}, tokens
