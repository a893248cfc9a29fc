"""Preparing expression for cell sentences: checks, log10 normalization, QC."""

from c2s.pp._expression import (
    ExpressionCheck,
    check_expression,
    log10_normalize,
    normalize,
    qc,
    require_rankable,
)

__all__ = [
    "ExpressionCheck",
    "check_expression",
    "log10_normalize",
    "normalize",
    "qc",
    "require_rankable",
]
