"""The settings of an evaluation: one dataclass, the single source of :func:`evaluate`'s
keywords (its signature is generated from the fields) and of ``c2s evaluate``'s flags (each
field's metadata holds its ``help`` and, where fixed, its ``choices``)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields, replace

from c2s._errors import C2SError

# the parts of an evaluation, in the order they run
PARTS = (
    "annotation",
    "generation",
    "perturbation",
    "description",
    "embedding",
    "reconstruction",
    "loss",
)


def _help(text: str, **more) -> dict:
    """A field's metadata: its one-line description (the flag's help on the command line)
    and ``more`` (``choices``; ``zero_means_none``: on the command line, 0 stands for None,
    no limit)."""
    return {"help": text, **more}


@dataclass
class EvalOptions:
    """What every part of an evaluation shares; each field is a keyword of :func:`evaluate`
    and a flag of ``c2s evaluate`` (its ``help`` metadata is the flag's help). More on some:

    - ``tasks``, ``n_genes``, ``organism`` default to the model's ``c2s_config.json``; a
      released checkpoint has none, so give them (labels then come from the training cells).
      An unknown task name is an error; known tasks that are not scored yet are listed under
      ``skipped``.
    - ``temperature``, ``top_p``: generation's sampling (None: :func:`c2s.tl.generate`'s).
    - ``model_frechet``: generation also reports the Frechet distance between generated and
      held-out cells in the model's own embedding space (``frechet_model``; the published
      scFID uses a foundation model's embeddings the same way). Costs an embedding pass over
      both.
    - ``max_cells``, ``max_train_cells``: at most this many cells of ``split`` (and of the
      other held-out split) and of the training split are used: a seeded sample, stratified by
      cell type, so that an atlas is evaluated in bounded time and memory. The report says
      how many cells of each split were used; ``None`` uses them all.
    - ``n_samples``: 5 by default because, on validation cells of two synthetic datasets, 5
      samples against 1 raised the top-20 DE Pearson of the predicted change from 0.20-0.30
      to 0.35-0.43 (BENCHMARKS.md).
    - ``parts``: any of :data:`PARTS`; an unknown part is an error.
    """

    split: str = field(default="test", metadata=_help("split to evaluate on"))
    batch_size: int = field(default=16, metadata=_help("cells per model batch"))
    seed: int = field(
        default=0, metadata=_help("seed of the cell sample, the baselines and the sampling")
    )
    progress_bar: bool | None = field(
        default=None, metadata=_help("progress bars on stderr (None: when stderr is a terminal)")
    )
    tasks: list[str] | None = field(
        default=None,
        metadata=_help(
            "tasks to score (default: the model's c2s_config.json; needed for a released "
            "checkpoint, e.g. --tasks cell_type_prediction)"
        ),
    )
    n_genes: int | None = field(
        default=None, metadata=_help("genes per cell sentence (default: the model's)")
    )
    organism: str | None = field(
        default=None, metadata=_help("organism for the prompts (default: the model's)")
    )
    temperature: float | None = field(
        default=None, metadata=_help("generation: sampling temperature")
    )
    top_p: float | None = field(default=None, metadata=_help("generation: nucleus sampling"))
    model_frechet: bool = field(
        default=False,
        metadata=_help("generation: also the Frechet distance in the model's embedding space"),
    )
    parts: tuple[str, ...] | None = field(
        default=None,
        metadata=_help(
            "only these parts of the evaluation (default: every part that applies)", choices=PARTS
        ),
    )
    max_cells: int | None = field(
        default=10_000,
        metadata=_help(
            "held-out cells used at most: a seeded sample stratified by cell type (0 for all)",
            zero_means_none=True,
        ),
    )
    max_train_cells: int | None = field(
        default=50_000,
        metadata=_help(
            "training cells the baselines and the embedding k-NN use at most (0 for all)",
            zero_means_none=True,
        ),
    )
    n_samples: int = field(
        default=5,
        metadata=_help("perturbation: predicted cells per held-out control and perturbation"),
    )

    def __post_init__(self):
        if self.parts is not None:
            self.parts = tuple(self.parts)
            if not set(self.parts) <= set(PARTS):
                unknown = sorted(set(self.parts) - set(PARTS))
                raise C2SError(f"Unknown evaluation part(s) {unknown}; known: {PARTS}.")

    @classmethod
    def from_keywords(cls, options: EvalOptions | None = None, **settings) -> EvalOptions:
        """``options`` (default: the defaults) with ``settings`` (field names) replaced; an
        unknown name is a ``TypeError``, as for any function's keyword."""
        names = {f.name for f in fields(cls)}
        for name in settings:
            if name not in names:
                raise TypeError(f"evaluate() got an unexpected keyword argument {name!r}")
        if options is None:
            return cls(**settings)
        return replace(options, **settings) if settings else options

    def wants(self, part: str) -> bool:
        return self.parts is None or part in self.parts

    def verb_kw(self) -> dict:
        """Keyword arguments every model verb takes."""
        kw = {"batch_size": self.batch_size, "progress_bar": self.progress_bar}
        if self.n_genes:
            kw["n_genes"] = self.n_genes
        if self.organism:
            kw["organism"] = self.organism
        return kw

    def sampling_kw(self) -> dict:
        """Sampling options given for generation (the rest are the verb's defaults)."""
        kw = {"temperature": self.temperature, "top_p": self.top_p}
        return {k: v for k, v in kw.items() if v is not None}


def takes_settings(fn):
    """Give ``fn``, which takes the settings as ``**settings``, a signature that lists every
    field of :class:`EvalOptions` as a keyword-only parameter with its default (what
    ``help()``, ``inspect.signature`` and editors show)."""
    sig = inspect.signature(fn)
    params = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
    own = [p for p in params if p.kind is not p.KEYWORD_ONLY]
    keyword = inspect.Parameter.KEYWORD_ONLY
    settings = [
        inspect.Parameter(f.name, keyword, default=f.default, annotation=f.type)
        for f in fields(EvalOptions)
    ]
    rest = [p for p in params if p.kind is p.KEYWORD_ONLY]
    fn.__signature__ = sig.replace(parameters=[*own, *settings, *rest])
    return fn
