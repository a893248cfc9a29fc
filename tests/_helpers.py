"""Helpers that tests import (``from _helpers import ...``; a module of its own, since every
test directory's conftest.py would be a module named ``conftest``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from c2s._atomic import TMP_PREFIX


def dense(X) -> np.ndarray:
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def assert_no_output(out: Path) -> None:
    """``out`` was not created and no temporary sibling was left behind."""
    out = Path(out)
    assert not out.exists()
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(TMP_PREFIX)]
    assert leftovers == []
