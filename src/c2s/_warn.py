"""Warnings that point at the user's code: :func:`warn_user` reports the first frame outside
the c2s package (the user's call), however deep inside c2s the warning is raised, so a
wrapper (``@renamed``) or a moved helper never shifts where a warning points."""

from __future__ import annotations

import os
import sys
import warnings

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """Warn at the first frame outside c2s: the user's call, however deep inside c2s the
    warning is raised."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
