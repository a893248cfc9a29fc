"""The words of the flag table (:mod:`c2s.cli._flag_table`): how a command spells a
parameter (:class:`Flag`), a group of flags several commands share (:class:`Group`) and one
command's flags beyond the generic rule (:class:`Spec`). The builder is
:mod:`c2s.cli._flags`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Flag:
    """How the command line spells one parameter, or one option of its own (``cli``), where
    the generic rule (``--param-name``, the help from the docstring, type and default from
    the signature) does not say it. A ``name`` without dashes makes a positional argument."""

    name: str | None = None
    help: str | None = None
    aliases: tuple[str, ...] = ()  # old spellings: still accepted, with a warning
    also: tuple[str, ...] = ()  # other current spellings (``--reward`` for ``--rewards``)
    cli: bool = False  # an option of the command line, not a parameter of the verb
    unset: bool = False  # default None, and the verb's own default when not given
    to_verb: Any = None  # the value the verb gets, from the parsed one
    exclusive: str | None = None  # the mutually exclusive group it belongs to
    group: str | None = None  # the --help section it is listed in
    options: dict = field(default_factory=dict)  # argparse keywords over the generated ones


def flag(name=None, *, help=None, aliases=(), also=(), **settings) -> Flag:
    """A :class:`Flag`: ``settings`` are its other fields (``cli``, ``unset``, ``to_verb``,
    ``exclusive``, ``group``) and argparse keywords (``choices``, ``metavar`` ...)."""
    own = {f.name for f in dataclasses.fields(Flag)}
    kw = {k: v for k, v in settings.items() if k in own}
    options = {k: v for k, v in settings.items() if k not in own}
    return Flag(name, help, tuple(aliases), tuple(also), options=options, **kw)


@dataclass(frozen=True)
class Group:
    """Flags shared by several commands. A member the verb has as a parameter is that
    parameter (its default the verb's); ``if_param`` members are left out where it has not."""

    members: dict[str, Flag]
    title: str | None = None
    if_param: tuple[str, ...] = ()


@dataclass(frozen=True)
class Spec:
    """A command's flags beyond the generic rule.

    ``groups``: its shared groups, in order (their positional arguments come first);
    ``flags``: parameters it spells otherwise, and its own options (``cli``); ``exclude``:
    parameters it does not offer, each with the reason; ``drop``: members of its groups it
    does not have; ``docs``: other verbs or options dataclasses (dotted paths) that describe
    its parameters; ``exclusive``: its mutually exclusive groups (name -> required);
    ``positionals``: their order where it is not the groups' then the signature's;
    ``config``: the options dataclass's flags are also keys of a ``--config`` file (unset
    ones stay absent), listed under this title.
    """

    groups: tuple[str, ...] = ()
    flags: dict[str, Flag] = field(default_factory=dict)
    exclude: dict[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    docs: tuple[str, ...] = ()
    exclusive: dict[str, bool] = field(default_factory=dict)
    positionals: tuple[str, ...] = ()
    config: str | None = None
