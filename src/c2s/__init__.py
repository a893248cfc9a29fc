"""c2s: cell sentences for single-cell analysis with language models.

Namespaces load on first use so that ``import c2s`` stays light (no torch, no numba):

- :mod:`c2s.pp` - expression checks, normalization and QC.
- :mod:`c2s.sources` - where cells come from: .h5ad / AnnData, TileDB-SOMA, several files, as
  one source (:func:`~c2s.sources.open_source`).
- :mod:`c2s.sentences` - the rank kernel and :class:`~c2s.sentences.CellSentences`.
- :mod:`c2s.io` - the Parquet dataset store, Hugging Face and reference-format interop.
- :mod:`c2s.prompts` - prompt tasks and templates (the released models' formats and more).
- :mod:`c2s.encoding` - prompt text to tokens (response-only labels, shortening), shared by
  training and inference.
- :mod:`c2s.model` - :class:`~c2s.model.C2SModel`: load, build from scratch, save; the
  inference kernels.
- :mod:`c2s.train` - :func:`~c2s.train.fine_tune` (full or LoRA, resume, DDP).
- :mod:`c2s.tl` - AnnData verbs running a model: predict, embed, generate, perturb, describe,
  screen (typed results: :class:`~c2s.tl.PredictionResult` ...).
- :mod:`c2s.inverse` - rank -> expression models and reconstruction.
- :mod:`c2s.metrics` - annotation, generation, perturbation, text and reconstruction metrics.
- :mod:`c2s.rewards` - rewards that score biology, for GRPO alignment (TRL's signature).
- :mod:`c2s.baselines` - logistic regression, k-NN, class-mean and resampled-cell baselines.
- :func:`c2s.evaluate` - a model against the baselines on a dataset's held-out cells.
- :mod:`c2s.datasets` - synthetic data and the bundled PBMC data.
- :mod:`c2s.pl` - plots.

Errors the user can fix are :class:`C2SError` (a ``ValueError``) with a message that says
what to change.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from c2s._errors import C2SError, OutputExistsError
from c2s._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from c2s import (
        baselines,
        datasets,
        encoding,
        inverse,
        io,
        metrics,
        model,
        pl,
        pp,
        prompts,
        rewards,
        sentences,
        sources,
        tl,
        train,
    )
    from c2s.evaluation import evaluate

_SUBMODULES = (
    "pp",
    "sources",
    "sentences",
    "io",
    "prompts",
    "encoding",
    "train",
    "model",
    "inverse",
    "metrics",
    "baselines",
    "evaluation",
    "datasets",
    "pl",
    "tl",
    "rewards",
)

__all__ = [
    "C2SError",
    "OutputExistsError",
    "__version__",
    "baselines",
    "datasets",
    "encoding",
    "evaluate",
    "inverse",
    "io",
    "metrics",
    "model",
    "pl",
    "pp",
    "prompts",
    "rewards",
    "sentences",
    "sources",
    "tl",
    "train",
]


def __getattr__(name: str):
    if name == "evaluate":
        from c2s.evaluation import evaluate

        globals()["evaluate"] = evaluate
        return evaluate
    if name in _SUBMODULES:
        module = importlib.import_module(f"c2s.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'c2s' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
