"""The one flag builder: every option of every subcommand is made here.

A subcommand's flags come from what it runs: a verb's signature and numpydoc docstring (the
``Parameters`` section gives the help; the signature the default and the type: ``Literal``
gives choices, ``bool`` a switch, ``Sequence[str]`` one or more values), or an options
dataclass (``TrainConfig``, ``AlignConfig``, ``EvalOptions``: one flag per field, its help,
choices and other names from the field's metadata); plus the shared groups of
:mod:`c2s.cli._flag_table` (model, dataset, input, split, SOMA, output, sampling, device),
each defined once. Where the command line spells a parameter differently (``--raw`` for
``use_raw``), keeps an old spelling (a deprecated alias: it still works, with a warning that
names the new flag) or does not offer it (``progress_bar``), the command's entry in that table
says so. :func:`verb_kwargs` turns the parsed options back into the verb's keyword arguments.
Every action made here carries ``action.c2s_flag`` (what it was made from), so a test can
tell that no flag is written by hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
from dataclasses import dataclass
from typing import Any

from c2s.cli import _flag_read as read
from c2s.cli._flag_spec import Flag, Spec, flag

EMPTY, KEYWORD = read.EMPTY, read.KEYWORD


@dataclass(frozen=True)
class Made:
    """What the builder made an action from (``action.c2s_flag``): the verb parameter or
    options field it sets (None for an option of the command line) and its shared group."""

    param: str | None
    group: str | None = None


def tag(action: argparse.Action, param: str | None = None, group: str | None = None):
    action.c2s_flag = Made(param, group)
    return action


# -- commands ---------------------------------------------------------------------------------
def add_command(sub, name: str, *, run, verb=None, key: str | None = None, **parser_kw):
    """The subparser ``name`` with the flags of ``verb`` (a function or class: its signature
    and docstring; or an options dataclass: its fields), as the table's entry ``key``
    (default ``name``) spells them; ``args.run`` is ``run``."""
    from c2s.cli._flag_lookup import spec_of

    parser = sub.add_parser(name, **parser_kw)
    spec = spec_of(key or name)
    made = _Builder(parser, spec, read.parameters(verb), _described(verb, spec)).build()
    parser.set_defaults(run=run, c2s_params=made)
    parser.c2s_command = (key or name, verb)  # what it was built from, for tests/cli
    return parser


def verb_kwargs(args, **given) -> dict:
    """The keyword-only arguments of the verb the command was built from, from the parsed
    ``args``, plus ``given``; positional ones (the data, the model) the command passes."""
    kwargs = {}
    for dest, (param, to_verb, unset, keyword) in args.c2s_params.items():
        if not keyword or not hasattr(args, dest):
            continue
        value = getattr(args, dest)
        if unset and value is None:
            continue
        kwargs[param] = value if to_verb is None else to_verb(value)
    return {**kwargs, **given}


def options_kwargs(args, cls, model_keys=()) -> tuple[dict, dict]:
    """(options of the dataclass ``cls``, model options) from ``--config`` and the flags;
    flags win over the file."""
    from c2s.train import read_yaml

    file_opts = read_yaml(args.config) if args.config else {}
    if hasattr(cls, "upgrade_names"):  # a file's old key, then a new flag: the flag wins
        file_opts = cls.upgrade_names(file_opts, source=str(args.config))
    model_opts = {k: file_opts.pop(k) for k in model_keys if k in file_opts}
    for k in model_keys:
        if getattr(args, k, None) is not None:
            model_opts[k] = getattr(args, k)
    names = {f.name for f in dataclasses.fields(cls)}
    flags = {k: v for k, v in vars(args).items() if k in names}
    return {**file_opts, **flags}, model_opts


def warn_renamed_flags(args) -> None:
    """Warn once per old flag spelling given (``--top-k`` for ``--top-labels`` ...)."""
    from c2s._deprecate import warn_renamed

    for old, new in dict(getattr(args, "c2s_renamed", ())).items():
        warn_renamed(old, new)


def add_globals(parser) -> None:
    """The options before the subcommand."""
    from c2s._version import __version__

    tag(parser.add_argument("--version", action="version", version=f"c2s {__version__}"))
    tag(parser.add_argument("-v", "--verbose", action="store_true", help="log progress details"))
    debug = "print the full traceback of an error"
    tag(parser.add_argument("--debug", action="store_true", help=debug))


def add_debug(parser) -> None:
    """``--debug`` after the subcommand too (hidden: the global one is documented)."""
    hidden = {"default": argparse.SUPPRESS, "help": argparse.SUPPRESS}
    tag(parser.add_argument("--debug", action="store_true", **hidden))


# -- one command's flags ----------------------------------------------------------------------
@dataclass
class _Item:
    key: str  # the parameter, or the name of an option of the command line
    flag: Flag
    param: str | None  # None: not a parameter of the verb
    group: str | None  # the shared group it comes from


class _Builder:
    """Adds one command's flags to its parser."""

    def __init__(self, parser, spec: Spec, params: dict, described: tuple[dict, dict]):
        self.parser, self.spec, self.params = parser, spec, params
        self.docs, self.fields = described
        self.sections: dict[str | None, Any] = {None: parser}
        self.exclusive: dict[str, Any] = {}

    def build(self) -> dict:
        """Add every flag; returns dest -> (parameter, to_verb, unset, keyword-only) for
        :func:`verb_kwargs`."""
        made = {}
        for item in self._positionals_first(self._items()):
            action = self._add(item)
            if item.param is not None:
                keyword = self.params[item.param].kind is KEYWORD
                made[action.dest] = (item.param, item.flag.to_verb, item.flag.unset, keyword)
        return made

    def _items(self) -> list[_Item]:
        """The flags to add, in order: the groups' members, the verb's other parameters,
        the command's own options."""
        from c2s.cli._flag_table import COMMON, COMMON_EXCLUDED, group

        spec, params = self.spec, self.params
        check_spec(spec, params)
        items, taken = [], set()
        for name in spec.groups:
            shared = group(name)
            for key, member in shared.members.items():
                if key in spec.drop or (key in shared.if_param and key not in params):
                    continue
                merged = self._flag(key, COMMON.get(key), member, shared.title)
                param = key if key in params and not merged.cli else None
                items.append(_Item(key, merged, param, name))
                taken.add(key)
        excluded = {**{k: v for k, v in COMMON_EXCLUDED.items() if k in params}, **spec.exclude}
        for key in params:
            if key not in taken and key not in excluded:
                items.append(_Item(key, self._flag(key, COMMON.get(key)), key, None))
                taken.add(key)
        items += [_Item(k, f, None, None) for k, f in spec.flags.items() if k not in taken]
        return items

    def _flag(self, key: str, common, member=None, title=None) -> Flag:
        """What the docstring, the common definition, the group, the options' metadata and
        the command's entry say of ``key``; the later win."""
        doc = Flag(help=self.docs[key]) if key in self.docs else None
        if self.spec.config and key in self.params:
            common = None  # an options file's keys are the dataclass's alone
        merged = _merge(doc, common, member, self.fields.get(key), self.spec.flags.get(key))
        if title and merged.group is None:
            merged = dataclasses.replace(merged, group=title)
        param = self.params.get(key)
        if merged.name is None and param is not None and _positional_param(param):
            merged = dataclasses.replace(merged, name=key)  # a positional argument
        if self.spec.config and key in self.params and merged.group is None:
            merged = dataclasses.replace(merged, group=self.spec.config)
        return merged

    def _positionals_first(self, items: list[_Item]) -> list[_Item]:
        first = [i for i in items if _positional(i.flag)]
        if self.spec.positionals:
            first.sort(key=lambda i: self.spec.positionals.index(i.flag.name))
        return first + [i for i in items if not _positional(i.flag)]

    def _add(self, item: _Item) -> argparse.Action:
        names, kw = self._arguments(item)
        if item.flag.aliases:
            action = kw.get("action", "store")
            kw["action"] = _renamed_action(action, names[0], item.flag.aliases)
        action = self._container(item.flag).add_argument(*names, **kw)
        return tag(action, item.param, item.group)

    def _arguments(self, item: _Item) -> tuple[list[str], dict]:
        """The option strings and argparse keywords of ``item``."""
        flag = item.flag
        param = self.params.get(item.param) if item.param else None
        config = bool(self.spec.config) and param is not None and item.group is None
        kw = {} if param is None else _from_signature(param, flag.options, config=config)
        if "action" in flag.options:  # the flag's own action replaces the generated one
            kw = {k: v for k, v in kw.items() if k in ("default", "required")}
        kw.update(flag.options)
        if flag.unset:
            kw["default"] = None
        if _positional(flag):
            if kw.get("nargs") not in ("?", "*"):
                kw.pop("default", None)
            kw.pop("required", None)
            names = [flag.name]
        else:
            names = [flag.name or "--" + item.key.replace("_", "-"), *flag.also, *flag.aliases]
            if item.param is not None:
                kw.setdefault("dest", item.param)
        if config:
            kw["help"] = _config_help(flag.help or "", param.default, flag.aliases)
        else:
            kw["help"] = _help_text(flag.help, kw.get("default"), kw.get("nargs"), flag.aliases)
        return names, kw

    def _container(self, flag: Flag):
        if flag.exclusive is None:
            return self._section(flag.group)
        if flag.exclusive not in self.exclusive:
            section = self._section(flag.group)
            required = self.spec.exclusive[flag.exclusive]
            self.exclusive[flag.exclusive] = section.add_mutually_exclusive_group(required=required)
        return self.exclusive[flag.exclusive]

    def _section(self, title: str | None):
        if title not in self.sections:
            shown = title
            if title is not None and title == self.spec.config:
                shown = f"{title} (also valid as keys of --config)"
            self.sections[title] = self.parser.add_argument_group(shown)
        return self.sections[title]


def _positional(flag: Flag) -> bool:
    return flag.name is not None and not flag.name.startswith("-")


def _positional_param(param: inspect.Parameter) -> bool:
    return param.kind is not KEYWORD and param.default is EMPTY


def check_spec(spec: Spec, params: dict) -> None:
    """A table entry that names a parameter the verb does not have is out of date."""
    from c2s.cli._flag_table import group

    members = {k for name in spec.groups for k in group(name).members}
    stale = [k for k in spec.exclude if k not in params]
    stale += [k for k, f in spec.flags.items() if not f.cli and k not in {*params, *members}]
    if stale:
        raise TypeError(f"the flag table names parameters the verb does not have: {stale}")


def _merge(*flags: Flag | None) -> Flag:
    """The later flags' settings over the earlier ones'."""
    out, blank = Flag(), Flag()
    for f in flags:
        if f is None:
            continue
        changes = {
            fld.name: getattr(f, fld.name)
            for fld in dataclasses.fields(Flag)
            if fld.name != "options" and getattr(f, fld.name) != getattr(blank, fld.name)
        }
        out = dataclasses.replace(out, **changes, options={**out.options, **f.options})
    return out


# -- types, defaults and help -----------------------------------------------------------------
def _from_signature(param: inspect.Parameter, declared: dict, *, config: bool = False) -> dict:
    """argparse options for a parameter: its type, choices, number of values and default
    (required when it has none). ``config``: an options-file key (unset: absent; a bool is
    ``--x/--no-x``; a list's values add up over repeated flags)."""
    default = param.default
    if any(k in declared for k in ("type", "nargs", "action")):
        kind = (None, None, False, False)  # the table says what the values are
    else:
        try:
            kind = read.kind(param.annotation, default)
        except TypeError as e:
            raise TypeError(f"{param.name}: {e}") from None
    value_type, choices, many, optional = kind
    kw: dict = {}
    if value_type is bool:
        toggle = config or default is True
        kw["action"] = argparse.BooleanOptionalAction if toggle else "store_true"
    elif config:  # as c2s train always made them
        many_values = {"nargs": "+", "action": "extend", "metavar": "X"} if many else {}
        kw.update(type=value_type, **many_values)
    else:
        if value_type is str and optional and default not in (None, EMPTY):
            kw["type"] = none_or_str  # None must be reachable: spelled 'none'
        elif value_type not in (None, str):
            kw["type"] = value_type
        if choices:
            kw["choices"] = choices
        if many:
            kw["nargs"] = "+"
    if config:
        kw["default"] = argparse.SUPPRESS
    elif default is EMPTY:
        kw["required"] = True
    else:
        kw["default"] = default
    return kw


def none_or_str(value: str) -> str | None:
    return None if value.lower() == "none" else value


def zero_is_none(value):
    return value or None


def _help_text(text: str | None, default, nargs, aliases) -> str:
    """The help: the text, the default where the text does not say one, old spellings."""
    text = text or ""
    said = isinstance(default, bool) or default in (None, "", argparse.SUPPRESS)
    if not said and "default" not in text.lower():
        if isinstance(default, tuple | list):
            default = (" " if nargs else ",").join(map(str, default))
        text = f"{text} (default: {default})".strip()
    return _with_aliases(text, aliases).replace("%", "%%")


def _config_help(text: str, default, aliases) -> str:
    """An options-file key's help, as ``c2s train`` always wrote it."""
    text = text if default is None else f"{text} (default: {default})"
    return _with_aliases(text, aliases).replace("%", "%%")


def _with_aliases(text: str, aliases) -> str:
    if not aliases:
        return text
    return f"{text} ({', '.join(aliases)}: its old name, deprecated)".strip()


def _renamed_action(action, new: str, old: tuple[str, ...]):
    """``action`` that also notes an ``old`` spelling it was given by, for
    :func:`warn_renamed_flags` (the warnings are shown once the command line is read)."""

    class Renamed(_action_class(action)):
        def __call__(self, parser, namespace, values, option_string=None):
            if option_string in old:
                given = getattr(namespace, "c2s_renamed", [])
                namespace.c2s_renamed = [*given, (option_string, new)]
            super().__call__(parser, namespace, values, option_string)

    return Renamed


@functools.cache
def _action_class(action) -> type[argparse.Action]:
    """The class of the argparse ``action`` (a class, or a name: ``"store"``,
    ``"store_true"``, ``"extend"`` ...), as a parser makes it (argparse's own table of names
    is private)."""
    if isinstance(action, type):
        return action
    return type(argparse.ArgumentParser(add_help=False).add_argument("--x", action=action))


# -- what the parameters are, in words --------------------------------------------------------
def _described(verb, spec: Spec) -> tuple[dict[str, str], dict[str, Flag]]:
    """Per parameter, its help from the numpydoc docstrings, and its :class:`Flag` from an
    options dataclass's field metadata (help, choices, other names, what 0 means), read from
    the verbs and dataclasses ``spec.docs`` names and from ``verb`` itself (the verb's win)."""
    import importlib

    docs: dict[str, str] = {}
    fields: dict[str, Flag] = {}
    sources = []
    for path in spec.docs:
        module, _, name = path.rpartition(".")
        sources.append(getattr(importlib.import_module(module), name))
    for source in [*sources, verb]:
        if source is None:
            continue
        if dataclasses.is_dataclass(source):
            fields.update(_field_flags(source))
        else:
            docs.update(read.param_docs(source))
    return docs, fields


def _field_flags(cls) -> dict[str, Flag]:
    """Flags as an options dataclass's field metadata describe them."""
    out = {}
    for name, meta in read.field_metadata(cls).items():
        options = {"choices": tuple(meta["choices"])} if "choices" in meta else {}
        to_verb = zero_is_none if meta.get("zero_means_none") else None
        old = ["--" + o.replace("_", "-") for o in meta.get("old_names", ())]
        also = meta.get("flags", ())
        out[name] = flag(
            help=meta.get("help", ""), aliases=old, also=also, to_verb=to_verb, **options
        )
    return out
