"""The ``c2s`` logger and the one progress helper used for every long loop."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
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
    """A tqdm bar on stderr (or a silent pass-through when disabled)."""
    from tqdm.auto import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        disable=not progress_enabled(enabled),
        file=sys.stderr,
        dynamic_ncols=True,
        unit_scale=unit != "it",
    )


def quiet_hf_progress() -> None:
    """Silence the Hugging Face libraries' own bars (loading and saving weights) when c2s
    progress is off."""
    if not progress_enabled(None):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
