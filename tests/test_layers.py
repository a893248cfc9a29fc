"""The package's shape, read from its imports: layers that point one way, no package cycles,
no private names or private modules taken from another package, and no module over 500 lines.

The layers, lowest first (docs/design.md draws them). A module may import from its own
package and from lower layers only; two packages on the same layer never import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "c2s"
MAX_LINES = 500

# Root-level private modules that every layer may use (errors, logging, atomic outputs, the
# version string, deprecation aliases, the AnnData check).
BASE = {"_version", "_errors", "_logging", "_atomic", "_deprecate", "_anndata", "_warn"}
LAYERS: list[set[str]] = [
    {"base"},
    {"pp", "metrics", "sources"},
    {"sentences"},
    {"io", "datasets", "pl", "baselines"},
    {"prompts", "inverse"},
    {"encoding", "rewards"},
    {"model"},
    {"train", "tl"},
    {"evaluation", "serve"},
    {"quickstart"},
    {"cli"},
]
LAYER_OF = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def _module_name(path: Path) -> str:
    parts = ["c2s", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str) -> str:
    """``c2s.io._store`` -> ``io``; ``c2s._errors`` -> ``base``; ``c2s`` -> ``c2s``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "c2s"
    top = parts[1]
    return "base" if top in BASE else top.lstrip("_")


def _imports(path: Path, module: str):
    """(line, target module, imported names) for every import of c2s, at any depth."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "c2s" or a.name.startswith("c2s."):
                    yield node.lineno, a.name, []
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:  # relative import: resolve against this module's package
                base = module.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([target] if target else [])])
            if target != "c2s" and not target.startswith("c2s."):
                continue
            names = [a.name for a in node.names]
            if target == "c2s":  # ``from c2s import pl``: each name is a module
                for n in names:
                    yield node.lineno, f"c2s.{n}", []
            else:
                yield node.lineno, target, names


def _all_imports():
    out = []
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        if module == "c2s":  # the lazy facade over every namespace
            continue
        for line, target, names in _imports(path, module):
            out.append((path.relative_to(SRC.parent), line, module, target, names))
    return out


IMPORTS = _all_imports()


def _cross():
    for where, line, module, target, names in IMPORTS:
        src, dst = package_of(module), package_of(target)
        if src != dst and dst != "c2s":
            yield f"{where}:{line}", src, dst, target, names


def test_every_package_has_a_layer():
    packages = {package_of(_module_name(p)) for p in SRC.rglob("*.py")} - {"c2s"}
    assert packages <= set(LAYER_OF), f"place these in LAYERS: {sorted(packages - set(LAYER_OF))}"


def test_imports_point_down_the_layers():
    upward = [
        f"{at}: {src} (layer {LAYER_OF[src]}) imports {target} (layer {LAYER_OF[dst]})"
        for at, src, dst, target, _ in _cross()
        if LAYER_OF[dst] >= LAYER_OF[src]
    ]
    assert not upward, "\n".join(upward)


def test_no_package_cycles():
    edges: dict[str, set[str]] = {}
    for _, src, dst, _, _ in _cross():
        edges.setdefault(src, set()).add(dst)

    def reaches(a: str, b: str, seen: set[str]) -> bool:
        for n in edges.get(a, ()):
            if n == b or (n not in seen and (seen.add(n) or reaches(n, b, seen))):
                return True
        return False

    cycles = sorted(p for p in edges if reaches(p, p, set()))
    assert not cycles, f"packages on an import cycle: {cycles}"


def test_the_library_never_imports_the_cli():
    bad = [f"{at}: {target}" for at, src, dst, target, _ in _cross() if dst == "cli"]
    assert not bad, "\n".join(bad)


def test_no_private_module_or_name_from_another_package():
    bad = []
    for at, _, dst, target, names in _cross():
        parts = target.split(".")
        if dst != "base" and any(p.startswith("_") for p in parts[2:]):
            bad.append(f"{at}: private module {target}")
        private = [n for n in names if n.startswith("_") and not n.endswith("__")]
        if private:
            bad.append(f"{at}: private name(s) {private} from {target}")
    assert not bad, "\n".join(bad)


def _swallowing_handlers(path: Path):
    """``except Exception`` / ``except BaseException`` / bare ``except`` blocks that neither
    raise nor use the exception they caught (in a message that names the cause)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.ExceptHandler):
            continue
        names = []
        for t in node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]:
            names.append(t.id if isinstance(t, ast.Name) else getattr(t, "attr", None))
        broad = node.type is None or {"Exception", "BaseException"} & set(names)
        raises = any(isinstance(n, ast.Raise) for n in ast.walk(node))
        uses = node.name is not None and any(
            isinstance(n, ast.Name) and n.id == node.name for b in node.body for n in ast.walk(b)
        )
        if broad and not raises and not uses:
            yield node.lineno


def test_no_catch_all_that_swallows_errors():
    bad = [
        f"{p.relative_to(SRC.parent)}:{line}"
        for p in sorted(SRC.rglob("*.py"))
        for line in _swallowing_handlers(p)
    ]
    assert not bad, "catch-all handlers that hide the cause:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC.parent))
)
def test_module_size(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.name} has {n} lines; split it by job (at most {MAX_LINES})"


def test_the_checks_see_real_violations(tmp_path):
    """The reader finds imports inside functions, relative imports and ``from c2s import``."""
    f = tmp_path / "x.py"
    f.write_text(
        "def g():\n    from c2s.cli._train import _x\nfrom c2s import pl\nfrom . import _kernel\n"
    )
    got = list(_imports(f, "c2s.sentences._rank"))
    assert (2, "c2s.cli._train", ["_x"]) in got
    assert (3, "c2s.pl", []) in got
    assert (4, "c2s.sentences", ["_kernel"]) in got
    assert package_of("c2s.io._store") == "io" and package_of("c2s._atomic") == "base"
    g = tmp_path / "y.py"
    g.write_text(
        "try:\n    f()\nexcept Exception:\n    pass\n"
        "try:\n    f()\nexcept (OSError, BaseException) as e:\n    raise X from e\n"
        "try:\n    f()\nexcept:\n    return None\n"
        "try:\n    f()\nexcept Exception as e:\n    print(f'error: {e}')\n"
        "try:\n    f()\nexcept Exception as e:\n    print('error')\n"
    )
    assert list(_swallowing_handlers(g)) == [3, 11, 19]


# -- the code's layout (issue 27) --------------------------------------------------------------
MAX_FUNCTION_LINES = 80
# ``# fmt: skip`` is for tables of data only: a line that holds nothing but literals
_TABLE = (ast.Constant, ast.Tuple, ast.List, ast.Dict, ast.Set, ast.Name, ast.UnaryOp)


def _skipped_statements(path: Path):
    """(line, statement) of every ``# fmt: skip`` whose statement is not a table of data (an
    assignment of literals: numbers, strings, tuples, lists, dicts of them)."""
    text = path.read_text()
    lines = text.splitlines()
    tree = ast.parse(text, filename=str(path))
    ends = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):
            ends.setdefault(node.end_lineno, node)
    for i, line in enumerate(lines, 1):
        if "# fmt: skip" not in line:
            continue
        node = ends.get(i)
        value = getattr(node, "value", None)
        table = isinstance(node, ast.Assign | ast.AnnAssign) and value is not None
        table = table and all(isinstance(n, (*_TABLE, ast.expr_context)) for n in ast.walk(value))
        if not table:
            yield i, line.strip()


def test_no_fmt_skip_outside_tables_of_data():
    bad = [
        f"{p.relative_to(SRC.parent)}:{i}: {s}"
        for p in sorted(SRC.rglob("*.py"))
        for i, s in _skipped_statements(p)
    ]
    assert not bad, "let the formatter lay these out (# fmt: skip is for data tables):\n" + (
        "\n".join(bad)
    )


def _function_lengths(path: Path):
    """(name, first line, lines) of every function, its docstring not counted (nested
    functions count in their own right and in the function around them)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            n = node.end_lineno - node.lineno + 1
            doc = node.body[0] if node.body else None
            value = getattr(doc, "value", None)
            if isinstance(doc, ast.Expr) and isinstance(getattr(value, "value", None), str):
                n -= doc.end_lineno - doc.lineno + 1
            yield node.name, node.lineno, n


def test_no_function_over_80_lines():
    bad = [
        f"{p.relative_to(SRC.parent)}:{line} {name}: {n} lines"
        for p in sorted(SRC.rglob("*.py"))
        for name, line, n in _function_lengths(p)
        if n > MAX_FUNCTION_LINES
    ]
    assert not bad, f"split these into named phases (at most {MAX_FUNCTION_LINES} lines):\n" + (
        "\n".join(bad)
    )


def _module_imports(path: Path, module: str) -> set[str]:
    """The c2s modules ``path`` imports, at any depth (a deferred import inside a function
    still ties the two files together), resolved to module names."""
    out = set()
    for _, target, names in _imports(path, module):
        out.add(target)
        out |= {f"{target}.{n}" for n in names}
    return out


def test_no_file_level_import_loop():
    """No two files import each other (a package's ``__init__`` and its own modules
    excepted: that is how packages are made)."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    edges = {
        m: {t for t in _module_imports(p, m) if t in modules and t != m} for m, p in modules.items()
    }
    loops = {
        tuple(sorted((a, b)))
        for a, targets in edges.items()
        for b in targets
        if a in edges.get(b, set()) and not (a.startswith(b + ".") or b.startswith(a + "."))
    }
    assert not loops, f"files importing each other: {sorted(loops)}"


def test_the_layout_checks_see_real_violations(tmp_path):
    f = tmp_path / "x.py"
    f.write_text(
        'A = {"x": 1, "y": (2, 3)}  # fmt: skip\n'
        "def g(a, b):\n"
        '    """Doc."""\n'
        "    return f(a,  b)  # fmt: skip\n"
    )
    assert [i for i, _ in _skipped_statements(f)] == [4]
    assert [(n, k) for n, _, k in _function_lengths(f)] == [("g", 2)]
    g = tmp_path / "pkg" / "a.py"
    g.parent.mkdir()
    g.write_text("from c2s.io import b\n\ndef h():\n    from . import c\n")
    assert _module_imports(g, "c2s.io.a") == {"c2s.io", "c2s.io.b", "c2s.io.c"}
