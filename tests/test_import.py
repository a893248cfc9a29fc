"""``import c2s`` stays light; namespaces load on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "numba")


def run(code: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, timeout=120
    )


def test_import_does_not_load_heavy_packages():
    res = run("import c2s", "-X", "importtime")
    assert res.returncode == 0, res.stderr
    lines = [ln.rstrip() for ln in res.stderr.splitlines() if ln.startswith("import time:")]
    assert any(ln.endswith("| c2s") for ln in lines)  # the output format is what we parse
    for pkg in HEAVY:
        assert not [ln for ln in lines if ln.endswith(f"| {pkg}")], pkg


def test_namespaces_load_lazily():
    code = """
import sys
import c2s
assert "c2s.io" not in sys.modules and "c2s.sentences" not in sys.modules
assert "c2s.io" not in c2s.__dict__
io = c2s.io
assert "c2s.io" in sys.modules and io is sys.modules["c2s.io"]
assert callable(io.convert)
s = c2s.sentences
assert s is sys.modules["c2s.sentences"] and callable(s.rank)
for name in ("torch", "transformers"):
    assert name not in sys.modules, name
print("ok")
"""
    res = run(code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_unknown_attribute_and_dir():
    import c2s

    with pytest.raises(AttributeError, match="no attribute"):
        c2s.not_a_namespace  # noqa: B018
    assert {"io", "sentences", "pp", "inverse", "metrics", "datasets"} <= set(dir(c2s))
    assert isinstance(c2s.__version__, str) and c2s.__version__
