"""Write outputs under a temporary sibling name and rename them into place when complete."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from c2s._errors import OutputExistsError

TMP_PREFIX = ".c2s-tmp-"


def check_output(path: str | os.PathLike, *, overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite``; called before any work starts."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"Output {str(path)!r} already exists. Choose another path, or pass "
            "overwrite=True (--overwrite on the command line) to replace it."
        )
    return path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def tmp_sibling(path: Path) -> Path:
    """A fresh hidden name next to ``path`` (same directory, so a rename is atomic)."""
    return path.parent / f"{TMP_PREFIX}{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _place(tmp: Path, path: Path) -> None:
    if path.exists():
        # Move the old output aside first so that a failure here still leaves one of the two.
        old = tmp_sibling(path)
        os.replace(path, old)
        os.replace(tmp, path)
        _remove(old)
    else:
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory that becomes ``path`` only if the block succeeds."""
    path = check_output(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_sibling(path)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _place(tmp, path)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary file path that becomes ``path`` only if the block succeeds."""
    path = check_output(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}"
    try:
        yield tmp
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            _remove(tmp)
        raise
    _place(tmp, path)
