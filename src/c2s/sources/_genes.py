"""The one rule for gene names: where they come from (the var index or a var column) and
what makes them unusable in cell sentences (missing, empty, repeated, holding whitespace)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from c2s._errors import C2SError
from c2s._warn import warn_user

_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$")
_WHITESPACE = re.compile(r"\s")


def names_from_var(var: pd.DataFrame, var_names: str | None = None) -> np.ndarray:
    """Gene names as strings: ``var``'s index, or its column ``var_names`` (which must exist
    and name every gene)."""
    if var_names is None:
        return np.asarray(var.index.astype(str), dtype=object)
    if var_names not in var.columns:
        raise C2SError(
            f"var has no column {var_names!r} to take gene names from; "
            f"available: {list(var.columns)}."
        )
    col = var[var_names]
    empty = col.isna().to_numpy() | (col.astype(str).str.strip() == "").to_numpy()
    if empty.any():
        raise C2SError(
            f"{int(empty.sum())} genes have no name in var[{var_names!r}] (e.g. "
            f"{list(var.index[empty][:3])}); fill them in (for example from the var "
            "index) or take names from another column."
        )
    return np.asarray(col.astype(str), dtype=object)


def check_gene_names(names: Sequence[str], *, where: str = "adata.var_names") -> np.ndarray:
    """Validate gene names for use in cell sentences; returns them as an object array.

    Refuses duplicates, empty names and names containing whitespace (a sentence is split on
    spaces), and warns when most names look like Ensembl IDs (released models were trained on
    gene symbols) or when names differ only by case. The warnings point at the first frame
    outside c2s (the user's call).
    """
    names = np.asarray([str(n) for n in names], dtype=object)
    if len(names) == 0:
        raise C2SError(f"{where} is empty: the data has no genes.")
    _refuse_duplicates(names, where)
    # One regex over the joined names is much faster than per-name string methods.
    joined = "\x00".join(names)
    if "\x00\x00" in f"\x00{joined}\x00":
        n_empty = int(sum(len(n) == 0 for n in names))
        raise C2SError(f"{n_empty} gene names in {where} are empty strings; name every gene.")
    if _WHITESPACE.search(joined):
        spaced = [n for n in names if _WHITESPACE.search(n)]
        raise C2SError(
            f"{len(spaced)} gene names in {where} contain whitespace "
            f"(e.g. {', '.join(map(repr, spaced[:3]))}), which would split them in a cell "
            "sentence. Replace it, e.g. adata.var_names = "
            "adata.var_names.str.replace(r'\\s+', '_', regex=True)."
        )
    _warn_odd(names, joined, where)
    return names


def _refuse_duplicates(names: np.ndarray, where: str) -> None:
    index = pd.Index(names)
    if index.has_duplicates:
        dup = index[index.duplicated()].unique()
        raise C2SError(
            f"{len(dup)} gene names in {where} are duplicated "
            f"(e.g. {', '.join(map(repr, dup[:5]))}). Each gene must have one name; run "
            "adata.var_names_make_unique() or aggregate the duplicated genes first."
        )


def _warn_odd(names: np.ndarray, joined: str, where: str) -> None:
    """Names that work but may not be what the user meant: Ensembl IDs, case clashes."""
    sample = names[:: max(1, len(names) // 1000)]
    ens = np.mean([bool(_ENSEMBL.match(n)) for n in sample])
    if ens > 0.5:
        warn_user(
            f"{ens:.0%} of the gene names in {where} look like Ensembl IDs (e.g. {names[0]!r}). "
            "Cell2Sentence models are trained on gene symbols; use a symbol column instead "
            "(--var-names COLUMN, or var_names='COLUMN' in Python).",
        )
    upper = pd.Index(joined.upper().split("\x00"))
    if upper.has_duplicates:
        clash = upper[upper.duplicated()].unique()
        warn_user(
            f"{len(clash)} gene names differ only by case (e.g. {clash[0]!r}) and share one "
            "upper-cased display name in sentences; their text is ambiguous.",
        )
