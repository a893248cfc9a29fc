"""Outputs that never lose data: checked before any work, written under a temporary sibling
name, renamed into place when complete, one writer at a time.

- **Ownership.** ``overwrite`` replaces only what c2s made: a directory with c2s's marker
  file (``.c2s-output.json``, written into every output directory) of a compatible kind, an
  unmarked directory of an older c2s that holds nothing but what c2s writes there, or a file
  with the suffix the verb writes. Anything else is refused with a message.
- **Inputs are safe.** An output that is, contains or lies inside an input is refused.
- **Rollback.** The previous output stays in place until the new one is complete; if the
  final rename fails, it is put back.
- **One writer.** A lock file next to the output (``.c2s-lock-NAME``) lets one process write
  it at a time; a lock left by a process that no longer runs is reported and cleared, and so
  are its temporaries (``.c2s-tmp-NAME-PID-...``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator
from fnmatch import fnmatchcase
from pathlib import Path

from c2s._errors import C2SError, OutputExistsError
from c2s._version import __version__

TMP_PREFIX = ".c2s-tmp-"
LOCK_PREFIX = ".c2s-lock-"
MARKER = ".c2s-output.json"

# Directory kinds c2s writes, and the kinds an existing directory may have to be replaced by
# each (a training run and a saved model are both model directories).
DIR_KINDS: dict[str, set[str]] = {
    "dataset": {"dataset"},
    "run": {"run", "model"},
    "model": {"model", "run"},
    "evaluation": {"evaluation"},
    "quickstart": {"quickstart"},
    "reference": {"reference"},
    "screen": {"screen"},
}
# What c2s writes into a directory of each kind that older versions (before the marker)
# made: such a directory is c2s's only if it holds nothing else (a copied c2s_config.json
# does not make a user's folder c2s's to delete). Names or fnmatch patterns, top level only.
_MODEL = (
    "config.json", "generation_config.json", "c2s_config.json", "model.safetensors",
    "model-*-of-*.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
    "pytorch_model-*-of-*.bin", "pytorch_model.bin.index.json", "adapter_config.json",
    "adapter_model.safetensors", "adapter_model.bin", "README.md", "tokenizer.json",
    "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
    "merges.txt", "tokenizer.model", "chat_template.jinja",
    # a training run's own files
    "checkpoints", "split.json", "train_log.json", "alignment.png",
)  # fmt: skip
_EVALUATION = (
    "metrics.json", "report.md", "predictions.csv", "perturbation.csv", "generated.h5ad",
    "confusion_matrix.png", "umap_embeddings.png", "umap_generated.png",
    "reconstruction_heldout.png", "loss_curve.png",
)  # fmt: skip
_QUICKSTART = (
    *_EVALUATION,
    "dataset",
    "model",
    "generator",
    "loss_curve_*.png",
    "inverse_fit.png",
    "reconstruction.png",
)
_CONTENTS = {
    "dataset": ("c2s_dataset.json", "vocab.parquet", "cells-*.parquet"),
    "model": _MODEL,
    "run": _MODEL,
    "evaluation": _EVALUATION,
    "quickstart": _QUICKSTART,
}


def output_kind(path: str | os.PathLike) -> str | None:
    """The kind of c2s output directory ``path`` is, or None when c2s did not make it."""
    kind, foreign = _ownership(Path(path))
    return None if foreign else kind


def foreign_entry(path: str | os.PathLike) -> str | None:
    """For an unmarked directory shaped like an older c2s output: the first entry in it that
    c2s does not write there (which makes it the user's); else None."""
    return _ownership(Path(path))[1]


def _ownership(path: Path) -> tuple[str | None, str | None]:
    if not path.is_dir() or path.is_symlink():
        return None, None
    marker = path / MARKER
    if marker.is_file():
        try:
            kind = json.loads(marker.read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            return None, None
        return (kind if kind in DIR_KINDS else None), None
    kind = _legacy_kind(path)
    if kind is None:
        return None, None
    allowed = _CONTENTS[kind]
    for entry in sorted(p.name for p in path.iterdir()):
        if entry.startswith((TMP_PREFIX, LOCK_PREFIX)):
            continue  # c2s's own temporaries
        if not any(fnmatchcase(entry, pattern) for pattern in allowed):
            return kind, entry
    return kind, None


def _legacy_kind(path: Path) -> str | None:
    """The kind an older c2s's output directory shows by its files."""
    if (path / "c2s_dataset.json").is_file():
        return "dataset"
    if (path / "c2s_config.json").is_file():
        return "model"
    if (path / "split.json").is_file() and (path / "checkpoints").is_dir():
        return "run"  # an interrupted training run
    if (path / "metrics.json").is_file() and (path / "report.md").is_file():
        return "quickstart" if (path / "dataset" / "c2s_dataset.json").is_file() else "evaluation"
    return None


def write_marker(directory: str | os.PathLike, kind: str) -> None:
    """Mark ``directory`` as a c2s output of ``kind`` (so that it may be replaced later)."""
    if kind not in DIR_KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    body = {"kind": kind, "c2s_version": __version__}  # no time: outputs stay byte-identical
    (Path(directory) / MARKER).write_text(json.dumps(body, sort_keys=True) + "\n")


def _real(p: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(p)))


def check_not_input(path: str | os.PathLike, inputs: Iterable) -> None:
    """Refuse an output that is, contains or lies inside one of ``inputs`` (paths that do not
    exist, such as hub ids, are skipped)."""
    out = _real(path)
    for inp in inputs:
        if inp is None or str(inp) == "" or not Path(str(inp)).exists():
            continue
        src = _real(inp)
        if out == src or src in out.parents or out in src.parents:
            how = "is" if out == src else ("lies inside" if src in out.parents else "contains")
            raise C2SError(
                f"The output {str(path)!r} {how} the input {str(inp)!r}; writing it would "
                "destroy the input. Choose an output path outside the input."
            )


def check_output(
    path: str | os.PathLike,
    *,
    overwrite: bool,
    kind: str | None = None,
    inputs: Iterable = (),
) -> Path:
    """Refuse an output that would lose data; called before any work starts.

    ``kind`` is a directory kind (:data:`DIR_KINDS`) or, for a file, None (its suffix is the
    kind). An existing output needs ``overwrite`` and must be replaceable: a c2s directory of
    a compatible kind, or a file with the same suffix.
    """
    path = Path(path)
    check_not_input(path, inputs)
    _check_writable(path)
    if not (path.exists() or path.is_symlink()):
        return path
    if not overwrite:
        raise OutputExistsError(
            f"Output {str(path)!r} already exists. Choose another path, or pass "
            "overwrite=True (--overwrite on the command line) to replace it."
        )
    _check_replaceable(path, kind)
    return path


def _check_writable(path: Path) -> None:
    """The output can be created: its nearest existing ancestor is a writable directory."""
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise C2SError(f"Cannot create {str(path)!r}: {str(parent)!r} is a file, not a directory.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise C2SError(f"Cannot create {str(path)!r}: no permission to write in {str(parent)!r}.")


def _check_replaceable(path: Path, kind: str | None) -> None:
    if kind is None:
        if path.is_symlink() or not path.is_file():
            raise C2SError(
                f"{str(path)!r} is not a file (a directory or a link), so c2s will not replace "
                "it with one. Choose another output path."
            )
        return
    found, foreign = _ownership(path)
    if foreign is not None:
        raise C2SError(
            f"{str(path)!r} holds {foreign!r}, which c2s does not write there, so --overwrite "
            "will not replace it (c2s only replaces outputs it wrote itself). Choose another "
            "output path, or remove it yourself."
        )
    if found is None or found not in DIR_KINDS[kind]:
        what = "not a directory c2s made" if found is None else f"a c2s {found}, not a {kind}"
        raise C2SError(
            f"{str(path)!r} is {what}, so --overwrite will not replace it (c2s only replaces "
            "outputs it wrote itself). Choose another output path, or remove it yourself."
        )


def tmp_sibling(path: Path, tag: str | None = None, *, suffix: str = "") -> Path:
    """A hidden name next to ``path`` (same directory, so a rename is atomic): unique
    (``.c2s-tmp-NAME-PID-RANDOM``, the writer's process id in it), or fixed by ``tag`` (for
    processes that must agree on it)."""
    tail = tag if tag is not None else f"{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"
    return path.parent / f"{TMP_PREFIX}{path.name}-{tail}"


_ASIDE = "-old"  # the previous output while its replacement is renamed into place


def _temporaries(path: Path) -> re.Pattern:
    """Names :func:`tmp_sibling` gives ``path``'s temporaries; group 1 is the process id."""
    name, aside = re.escape(TMP_PREFIX + path.name), re.escape(_ASIDE)
    return re.compile(rf"{name}-(\d+)-[0-9a-f]{{8}}({aside}|\..*)?")


def _clear_stale_temporaries(path: Path) -> None:
    """Remove what writers of ``path`` that no longer run (on this host) left next to it; a
    previous output that one of them had moved aside is put back if ``path`` is gone. Called
    with the lock held, so no live c2s process is writing these."""
    pattern, start = _temporaries(path), f"{TMP_PREFIX}{path.name}-"
    try:
        entries = sorted(
            path.parent / e.name for e in os.scandir(path.parent) if e.name.startswith(start)
        )
    except OSError:
        return
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        pid = int(m[1]) if m else 0
        if not 0 < pid < 2**31 or pid == os.getpid() or _alive(pid):
            continue
        try:
            if m[2] == _ASIDE and not (path.exists() or path.is_symlink()):
                os.replace(entry, path)
                warnings.warn(
                    f"Put back {str(path)!r}: process {pid}, which is no longer running, had "
                    "moved it aside to replace it.",
                    stacklevel=4,
                )
                continue
            _remove(entry)
        except OSError as e:
            warnings.warn(
                f"Could not remove {str(entry)!r}, left by process {pid}: {e}", stacklevel=4
            )
            continue
        warnings.warn(
            f"Removed {entry.name!r}, an unfinished temporary of {str(path)!r} left by process "
            f"{pid}, which is no longer running.",
            stacklevel=4,
        )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def place(tmp: Path, path: Path, *, overwrite: bool, kind: str | None = None) -> None:
    """Rename the finished ``tmp`` to ``path``. An output that appeared meanwhile is checked
    again; the previous output is moved aside first and put back if the rename fails."""
    if path.exists() or path.is_symlink():
        check_output(path, overwrite=overwrite, kind=kind)
        old = tmp_sibling(path, suffix=_ASIDE)
        os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(old, path)
            raise
        _remove(old)
    else:
        os.replace(tmp, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextlib.contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold ``.c2s-lock-NAME`` next to ``path`` while writing it: a second writer is refused;
    a lock left by a process that no longer runs (on this host) is reported and cleared, and
    so are the temporaries of such processes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.parent / f"{LOCK_PREFIX}{path.name}"
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
    for attempt in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                other = json.loads(lock.read_text())
            except (OSError, ValueError):
                other = {}
            pid, host = other.get("pid"), other.get("host")
            if attempt == 0 and host == me["host"] and isinstance(pid, int) and not _alive(pid):
                warnings.warn(
                    f"Removed a stale lock on {str(path)!r} left by process {pid}, which is no "
                    "longer running.",
                    stacklevel=3,
                )
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
                continue
            since = time.strftime("%H:%M:%S", time.localtime(other.get("since", 0)))
            raise C2SError(
                f"Another c2s process (pid {pid} on {host}, since {since}) is writing "
                f"{str(path)!r}. Wait for it to finish; if it is gone, remove {str(lock)!r}."
            ) from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    try:
        _clear_stale_temporaries(path)
        yield lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


@contextlib.contextmanager
def atomic_dir(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    kind: str,
    inputs: Iterable = (),
) -> Iterator[Path]:
    """Yield a fresh temporary directory that becomes ``path`` (marked as a c2s output of
    ``kind``) only if the block succeeds."""
    path = check_output(path, overwrite=overwrite, kind=kind, inputs=inputs)
    with output_lock(path):
        tmp = tmp_sibling(path)
        tmp.mkdir()
        try:
            yield tmp
            write_marker(tmp, kind)
            place(tmp, path, overwrite=overwrite, kind=kind)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


@contextlib.contextmanager
def atomic_file(
    path: str | os.PathLike, *, overwrite: bool = False, inputs: Iterable = ()
) -> Iterator[Path]:
    """Yield a temporary file path (with ``path``'s suffix) that becomes ``path`` only if the
    block succeeds."""
    path = check_output(path, overwrite=overwrite, inputs=inputs)
    with output_lock(path):
        tmp = tmp_sibling(path, suffix=path.suffix)  # writers that go by the suffix see it
        try:
            yield tmp
            place(tmp, path, overwrite=overwrite)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                _remove(tmp)
            raise
