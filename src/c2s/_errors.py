"""Errors raised for input the user can fix."""

from __future__ import annotations


class C2SError(ValueError):
    """Bad input or a bad request: the message says what was wrong and how to fix it."""


class OutputExistsError(C2SError, FileExistsError):
    """The output path exists and overwriting was not requested."""
