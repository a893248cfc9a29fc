"""Inference split across the processes of a ``torchrun`` / ``accelerate launch`` run.

Inside :func:`across_ranks`, every inference kernel forms its length-sorted batches as one
process would, runs batches ``rank, rank + world, ...`` and exchanges the rows it computed,
so every process ends with all results. A batch has the same cells in the same order as in a
single process, so results do not depend on the number of processes. Every process must call
with the same prompts (checked).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import os

import numpy as np

from c2s._errors import C2SError
from c2s._logging import get_logger

log = get_logger(__name__)

_SPLIT = contextvars.ContextVar("c2s_across_ranks", default=False)


def launched_world_size() -> int:
    """Processes in this launch, from torchrun's environment (1 outside a launch)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


@contextlib.contextmanager
def across_ranks(enabled: bool = True):
    """Split inference inside this block across the launched processes.

    Under ``torchrun --nproc_per_node N`` (or ``accelerate launch``) each process runs every
    N-th batch and all processes receive every result; alone, nothing changes. The process
    group is started on first use (gloo, which carries the results between processes on any
    device) and kept until the process exits. Every process must pass the same cells and
    settings. Yields ``(rank, world size)``.
    """
    token = _SPLIT.set(bool(enabled))
    try:
        yield world()
    finally:
        _SPLIT.reset(token)


def world() -> tuple[int, int]:
    """``(rank, world size)`` of the current split; ``(0, 1)`` when inference is not split."""
    if not _SPLIT.get() or launched_world_size() == 1:
        return 0, 1
    import torch.distributed as dist

    _group()
    return dist.get_rank(), dist.get_world_size()


@functools.cache
def _group():
    """A gloo group: Python objects travel through it whatever backend the launch uses."""
    import torch.distributed as dist

    if not dist.is_initialized():
        import atexit

        # Started once and kept for the life of the process (a group cannot be started
        # again under the same launch); closed at exit.
        dist.init_process_group("gloo")
        atexit.register(dist.destroy_process_group)
    return None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")


def _all_gather(obj) -> list:
    import torch.distributed as dist

    got = [None] * dist.get_world_size()
    dist.all_gather_object(got, obj, group=_group())
    return got


def share(batches: list[np.ndarray]) -> list[np.ndarray]:
    """This process's batches (all of them when inference is not split)."""
    rank, size = world()
    if size == 1:
        return batches
    h = hashlib.sha256()
    for rows in batches:
        h.update(np.asarray(rows, dtype=np.int64).tobytes() + b"|")
    digests = _all_gather(h.hexdigest())
    if len(set(digests)) != 1:
        raise C2SError(
            "The processes of this launch were given different cells or prompts; under "
            "torchrun every process must read the same input with the same options."
        )
    mine = batches[rank::size]
    log.info("process %d of %d runs %d of %d batches", rank, size, len(mine), len(batches))
    return mine


def gather(out, batches: list[np.ndarray]):
    """Fill ``out`` (an array or a list indexed by prompt) with the rows the other processes
    computed; ``batches`` are this process's, as :func:`share` returned them."""
    _, size = world()
    if size == 1:
        return out
    rows = np.concatenate(batches).astype(np.int64) if batches else np.zeros(0, dtype=np.int64)
    mine = out[rows] if isinstance(out, np.ndarray) else [out[i] for i in rows]
    for their_rows, theirs in _all_gather((rows, mine)):
        if isinstance(out, np.ndarray):
            out[their_rows] = theirs
        else:
            for i, v in zip(their_rows, theirs, strict=True):
                out[i] = v
    return out


__all__ = ["across_ranks", "gather", "launched_world_size", "share", "world"]
