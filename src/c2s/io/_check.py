"""Dataset integrity: every file read and checked against the metadata (``c2s info --check``)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from c2s._deprecate import renamed
from c2s._errors import C2SError
from c2s.io._split import SPLITS

_BLOCK = 1 << 22  # gene entries sorted at a time when looking for repeats (bounds memory)


def _n(count: int, what: str) -> str:
    return f"{count} {what}{'s' * (count != 1)}"


def vocab_problems(vocab) -> list[str]:
    """What makes a vocabulary unusable: repeated, empty or blank-containing gene names
    (a sentence names genes by their text, so each must be one distinct word). Names that
    differ only by case are allowed (convert warns about them)."""
    import pandas as pd

    genes = pd.Index(np.asarray(vocab.genes, dtype=object).astype(str))
    out = []
    if genes.has_duplicates:
        dup = genes[genes.duplicated()].unique()
        out.append(
            f"the vocabulary names {_n(len(dup), 'gene')} more than once "
            f"(e.g. {', '.join(map(repr, dup[:3]))})"
        )
    bad = genes[(genes.str.len() == 0) | genes.str.contains(r"\s", regex=True)]
    if len(bad):
        out.append(f"the vocabulary has {_n(len(bad), 'empty or whitespace-holding gene name')}")
    return out


def sentence_problems(genes, offsets, values=None) -> list[str]:
    """What makes cell sentences nonsense: a gene named twice in one cell, or stored
    expression values that are not finite numbers. ``genes`` and ``values`` are the flat
    arrays, ``offsets`` each cell's start (and the end)."""
    genes = np.asarray(genes)
    offsets = np.asarray(offsets, dtype=np.int64)
    out = []
    n_rep = _cells_with_repeats(genes, offsets)
    if n_rep:
        out.append(f"a gene repeats in the sentence of {_n(n_rep, 'cell')}")
    if values is not None:
        bad = ~np.isfinite(np.asarray(values))
        if bad.any():
            cells = np.unique(np.searchsorted(offsets, np.flatnonzero(bad), side="right") - 1)
            out.append(f"values that are not numbers (NaN or inf) in {_n(len(cells), 'cell')}")
    return out


def _cells_with_repeats(genes: np.ndarray, offsets: np.ndarray) -> int:
    """Cells whose gene list holds a gene twice: (cell, gene) keys sorted a block of cells
    at a time; a repeat is two equal neighbours. The blocks keep the keys in int32, which
    numpy sorts several times faster than int64."""
    n_cells = len(offsets) - 1
    if n_cells <= 0 or len(genes) == 0:
        return 0
    low = int(genes.min())
    if low < 0:  # out-of-range indices are reported elsewhere
        genes = genes - low
    genes = genes.astype(np.int32, copy=False)
    width = int(genes.max()) + 1
    per_block = max(1, (2**31 - 1) // width)  # cells whose keys fit in int32
    count, a = 0, 0
    while a < n_cells:
        b = int(np.searchsorted(offsets, offsets[a] + _BLOCK, side="right")) - 1
        b = min(max(b, a + 1), a + per_block, n_cells)
        lo, hi = offsets[a], offsets[b]
        base = np.repeat(
            np.arange(b - a, dtype=np.int32) * np.int32(width), np.diff(offsets[a : b + 1])
        )
        keys = base + genes[lo:hi]
        keys.sort()
        same = keys[1:] == keys[:-1]
        if same.any():
            count += len(np.unique(keys[1:][same] // width))
        a = b
    return count


@renamed(ds="dataset")
def check_dataset(dataset) -> dict:
    """Read every file of ``dataset`` (a :class:`~c2s.io.C2SDataset`) and list what is
    wrong (``ds=``, the old name of ``dataset``, still works, warned).

    Checked: the vocabulary (readable, as many genes as the metadata says, each name once);
    each shard (readable, the cell count the metadata gives, gene indices inside the
    vocabulary, no gene twice in a cell, as many values as genes per cell and every value a
    number, a valid split column, the carried obs columns); cell ids unique across shards.

    Returns
    -------
    ``{"ok": bool, "path": str, "n_cells": int, "problems": [str, ...]}``; each problem names
    its file.
    """
    problems: list[str] = []
    n_genes = int(dataset.meta["n_genes"])
    try:
        problems += [f"{dataset.meta['vocab_file']}: {p}" for p in vocab_problems(dataset.vocab)]
    except C2SError as e:
        problems.append(f"{dataset.meta['vocab_file']}: {e}")
    want = ["cell_id", "genes", "split", *(["values"] if dataset.has_values else [])]
    seen: set[str] = set()
    n_cells = 0
    for f, shard in zip(dataset.files, dataset.meta["shards"], strict=True):
        name = f.name
        try:
            t = dataset._table(f)
        except C2SError as e:
            problems.append(f"{name}: cannot be read ({e.__cause__ or e})")
            continue
        missing = [c for c in [*want, *dataset.obs_columns] if c not in t.column_names]
        if missing:
            problems.append(f"{name}: lacks the column(s) {missing}")
            continue
        n_cells += t.num_rows
        if t.num_rows != int(shard["n_cells"]):
            problems.append(
                f"{name}: holds {t.num_rows} cells, the metadata says {shard['n_cells']}"
            )
        genes = t.column("genes").combine_chunks()
        flat = np.asarray(genes.flatten())
        if len(flat) and (flat.min() < 0 or flat.max() >= n_genes):
            bad = int(((flat < 0) | (flat >= n_genes)).sum())
            problems.append(
                f"{name}: {bad} gene indices lie outside the vocabulary of {n_genes} genes"
            )
        lens_g = np.asarray(pc.list_value_length(genes).fill_null(0))
        offsets = np.concatenate([[0], np.cumsum(lens_g)])
        vals = None
        if dataset.has_values:
            vcol = t.column("values").combine_chunks()
            lens_v = np.asarray(pc.list_value_length(vcol).fill_null(0))
            if not np.array_equal(lens_g, lens_v):
                problems.append(f"{name}: some cells have a different number of values and genes")
            else:
                vals = np.asarray(vcol.flatten(), dtype=np.float32)
        problems += [f"{name}: {p}" for p in sentence_problems(flat, offsets, vals)]
        split = t.column("split").combine_chunks()
        if not pa.types.is_dictionary(split.type) or split.dictionary.to_pylist() != list(SPLITS):
            problems.append(f"{name}: the split column is not {list(SPLITS)}")
        elif split.null_count:
            problems.append(f"{name}: {split.null_count} cells have no split")
        ids = t.column("cell_id").to_pylist()
        dup = len(ids) - len(set(ids)) + len(seen.intersection(ids))
        if dup:
            problems.append(f"{name}: {dup} cell ids repeat")
        seen.update(ids)
    if n_cells != dataset.n_cells and not any("cannot be read" in p for p in problems):
        problems.append(f"the shards hold {n_cells} cells, the metadata says {dataset.n_cells}")
    return {"ok": not problems, "path": str(dataset.path), "n_cells": n_cells, "problems": problems}


def refuse_damaged(ds, cs) -> None:
    """Raise a C2SError when what a copy of ``ds`` would carry is nonsense: its vocabulary,
    the sentences and cell ids of ``cs`` (all of its cells, read from it), and its stored
    values (one shard at a time). The cheap part of :func:`check_dataset`, for commands that read every cell
    anyway."""
    problems = [f"{ds.meta['vocab_file']}: {p}" for p in vocab_problems(ds.vocab)]
    problems += sentence_problems(cs.genes, cs.offsets)
    ids = cs.obs.index
    if ids.has_duplicates:
        problems.append(f"{_n(int(ids.duplicated().sum()), 'cell id')} repeated")
    if ds.has_values:
        for f in ds.files:
            col = ds._table(f, ["values"]).column("values").combine_chunks()
            vals = np.asarray(col.flatten(), dtype=np.float32)
            n_bad = int((~np.isfinite(vals)).sum())
            if n_bad:
                problems.append(f"{f.name}: values that are not numbers (NaN or inf): {n_bad}")
    if problems:
        raise C2SError(
            f"{ds.path} is damaged ({'; '.join(problems)}); `c2s info --check` lists every "
            "problem. Convert it again."
        )
