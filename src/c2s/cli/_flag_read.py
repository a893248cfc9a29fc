"""What a verb says of its parameters, read for the flag builder (:mod:`c2s.cli._flags`):
their types from the annotations, their help from numpydoc docstrings, an options
dataclass's fields as parameters and their metadata."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re

EMPTY = inspect.Parameter.empty
KEYWORD = inspect.Parameter.KEYWORD_ONLY


def parameters(verb) -> dict[str, inspect.Parameter]:
    """The parameters of ``verb`` a flag can set (not ``self``, ``*args``, ``**kwargs``); an
    options dataclass's fields as keyword-only parameters."""
    if verb is None:
        return {}
    if dataclasses.is_dataclass(verb):
        return {
            f.name: inspect.Parameter(f.name, KEYWORD, default=_field_default(f), annotation=f.type)
            for f in dataclasses.fields(verb)
        }
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    sig = inspect.signature(verb)
    return {n: p for n, p in sig.parameters.items() if n != "self" and p.kind not in skip}


def _field_default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


_TYPES = {"bool": bool, "int": int, "float": float, "str": str, "PathLike": str, "Path": str}
_MANY = {"Sequence", "list", "tuple", "Iterable", "Collection"}


def kind(annotation, default) -> tuple[type, list | None, bool, bool]:
    """(value type, choices, several values, None allowed) of an annotation: ``int | None``
    -> int; ``Literal["a", "b"]`` -> str with those choices; ``Sequence[str]`` -> several
    str. Without an annotation, the default's type."""
    if annotation is EMPTY:  # a path, a name: text, unless the default says otherwise
        if isinstance(default, tuple | list):
            raise TypeError("declare the flag's type (the parameter has no annotation)")
        return (str if default in (None, EMPTY) else type(default)), None, False, False
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    alternatives = _union(ast.parse(text, mode="eval").body)
    optional = any(_name(a) == "None" for a in alternatives)
    alternatives = [a for a in alternatives if _name(a) != "None"]
    first = alternatives[0]
    if isinstance(first, ast.Subscript):
        args = first.slice.elts if isinstance(first.slice, ast.Tuple) else [first.slice]
        if _name(first.value) == "Literal":
            values = [ast.literal_eval(a) for a in args]
            return type(values[0]), values, False, optional
        if _name(first.value) in _MANY:
            return kind(ast.unparse(args[0]), EMPTY)[0], None, True, optional
    names = [_name(a) for a in alternatives]
    for name in _TYPES:
        if name in names:
            return _TYPES[name], None, False, optional
    raise TypeError(f"declare the flag's type ({text} has no command-line form)")


def _union(node) -> list:
    """The alternatives of ``A | B`` or ``Optional[A]`` / ``Union[A, B]``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union(node.left) + _union(node.right)
    if isinstance(node, ast.Subscript) and _name(node.value) in ("Optional", "Union"):
        inner = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        none = [ast.Constant(None)] if _name(node.value) == "Optional" else []
        return [a for n in inner for a in _union(n)] + none
    return [node]


def _name(node) -> str:
    if isinstance(node, ast.Constant):
        return "None" if node.value is None else repr(node.value)
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ast.unparse(node)


def field_metadata(cls) -> dict[str, dict]:
    """Per field of an options dataclass, its metadata: ``help``, ``choices``, ``flags``
    (other names), ``old_names`` (deprecated ones), ``zero_means_none``."""
    return {f.name: dict(f.metadata) for f in dataclasses.fields(cls)}


def param_docs(obj) -> dict[str, str]:
    """``name -> text`` of a numpydoc ``Parameters`` section (a ``a, b`` entry gives both)."""
    lines = (inspect.getdoc(obj) or "").splitlines()
    heads = [i for i, ln in enumerate(lines[:-1]) if ln.strip() == "Parameters"]
    if not heads:
        return {}
    docs, names, text = {}, [], []
    for i in range(heads[0] + 2, len(lines) + 1):
        line = lines[i] if i < len(lines) else ""
        section_ends = i == len(lines) or (
            i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        )
        if section_ends or (line and not line[0].isspace()):
            docs.update(dict.fromkeys(names, _plain(" ".join(text))))
            if section_ends:
                break
            names, text = [n.strip().lstrip("*") for n in line.split(",")], []
        elif line.strip():
            text.append(line.strip())
    return docs


def _plain(text: str) -> str:
    """reST to plain text: ``x`` -> x, :func:`~c2s.tl.predict` -> predict."""
    text = re.sub(r":\w+:`~([^`]+)`", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    text = re.sub(r":\w+:`([^`]+)`", r"\1", text)
    return " ".join(text.replace("``", "").split())
