"""A command's entry of the flag table (:mod:`c2s.cli._flag_table`), completed with what the
library defines (the choices of a parameter), read when the command is built: the packages
that define them are not light."""

from __future__ import annotations

import dataclasses

from c2s.cli._flag_spec import Flag, Spec
from c2s.cli._flag_table import COMMANDS, serve_spec


def _library_choices(key: str) -> dict[str, list[str]]:
    """Per parameter of the command ``key``, the choices the library defines (read when the
    command is built: their packages are not light)."""
    if key == "convert":
        from c2s.sources import GENE_MODES

        return {"genes": list(GENE_MODES)}
    if key == "inverse fit":
        from c2s.inverse import InverseModel

        return {"model": ["auto", *sorted(InverseModel.registry)]}
    if key == "prompt":
        from c2s.prompts import PROFILES

        return {"profile": list(PROFILES)}
    if key == "quickstart":
        from c2s.model import PRESETS

        return {"preset": list(PRESETS)}
    if key == "train":
        from c2s.model import ARCHITECTURES, PRESETS

        return {"preset": list(PRESETS), "architecture": list(ARCHITECTURES)}
    return {}


def spec_of(key: str) -> Spec:
    """The table's entry for the command ``key`` (``"inverse fit"`` for a nested one), with
    the library's choices."""
    spec = serve_spec() if key == "serve" else COMMANDS[key]
    flags = dict(spec.flags)
    for param, choices in _library_choices(key).items():
        own = flags.get(param, Flag())
        flags[param] = dataclasses.replace(own, options={**own.options, "choices": choices})
    return dataclasses.replace(spec, flags=flags)
