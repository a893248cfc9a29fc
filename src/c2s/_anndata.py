"""The one test for "is this an AnnData" (without importing anndata)."""

from __future__ import annotations


def is_anndata(data) -> bool:
    """True for an ``anndata.AnnData`` (or a view of one), checked by type name so that
    callers need not import anndata."""
    return any(c.__name__ == "AnnData" for c in type(data).__mro__)
