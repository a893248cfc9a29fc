"""The ``c2s`` logger, the one progress helper used for every long loop, and a stopwatch for
the stages of long jobs."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

logger = logging.getLogger("c2s")


def get_logger(name: str) -> logging.Logger:
    """Child logger under ``c2s``."""
    return logging.getLogger(name if name.startswith("c2s") else f"c2s.{name}")


def progress_enabled(progress: bool | None) -> bool:
    """``None`` means: on when stderr is a terminal, unless ``C2S_NO_PROGRESS`` is set."""
    if os.environ.get("C2S_NO_PROGRESS"):
        return False
    if progress is None:
        return sys.stderr.isatty()
    return bool(progress)


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    enabled: bool | None = None,
) -> Iterator[T]:
    """A tqdm bar on stderr (or a silent pass-through when disabled); under
    :func:`stop_when`, a loop over ``iterable`` that stops when told."""
    from tqdm.auto import tqdm

    bar = tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        disable=not progress_enabled(enabled),
        file=sys.stderr,
        dynamic_ncols=True,
        unit_scale=unit != "it",
    )
    stop = getattr(_stops, "stop", None)
    return bar if stop is None or iterable is None else _stopping(bar, stop)


class Stopped(Exception):
    """A loop under :func:`stop_when` was told to stop."""


_stops = threading.local()


@contextlib.contextmanager
def stop_when(stop: Callable[[], bool]):
    """Within the block, in this thread, every :func:`progress` loop raises :class:`Stopped`
    before its next step once ``stop()`` is true: how a server drops work nobody waits for."""
    previous = getattr(_stops, "stop", None)
    _stops.stop = stop
    try:
        yield
    finally:
        _stops.stop = previous


def _stopping(bar, stop: Callable[[], bool]) -> Iterator:
    with bar:
        for item in bar:
            if stop():
                raise Stopped("Stopped: nobody waits for the result any more.")
            yield item


@contextlib.contextmanager
def peft_wrapping():
    """Around peft's model wrappers (``get_peft_model``, ``PeftModel.from_pretrained``): peft
    reads the model's deprecated ``is_gradient_checkpointing`` through ``getattr`` with a
    default, so its removal in transformers 6 is harmless and the warning is not for users."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated")
        yield


def quiet_hf_progress() -> None:
    """Silence the Hugging Face libraries' own bars (loading and saving weights) when c2s
    progress is off."""
    if not progress_enabled(None):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


class Stopwatch:
    """Times named stages of a long job (``times``: seconds per stage) and, when ``verbose``,
    announces each on stderr."""

    def __init__(self, verbose: bool = False, prefix: str = "c2s"):
        self.times: dict[str, float] = {}
        self.verbose, self.prefix = verbose, prefix

    def run(self, name: str, fn: Callable[[], T]) -> T:
        """Call ``fn()`` as stage ``name`` and return its result."""
        if self.verbose:
            print(f"[{self.prefix}] {name} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        out = fn()
        self.times[name] = round(time.perf_counter() - t, 3)
        if self.verbose:
            print(
                f"[{self.prefix}] {name} done in {self.times[name]:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        return out
