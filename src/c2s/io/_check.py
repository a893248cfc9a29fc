"""Dataset integrity: every file read and checked against the metadata (``c2s info --check``)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from c2s._errors import C2SError
from c2s.io._split import SPLITS


def check_dataset(ds) -> dict:
    """Read every file of ``ds`` (a :class:`~c2s.io.C2SDataset`) and list what is wrong.

    Checked: the vocabulary (readable, as many genes as the metadata says); each shard
    (readable, the cell count the metadata gives, gene indices inside the vocabulary, as many
    values as genes per cell, a valid split column, the carried obs columns); cell ids unique
    across shards.

    Returns
    -------
    ``{"ok": bool, "path": str, "n_cells": int, "problems": [str, ...]}``; each problem names
    its file.
    """
    problems: list[str] = []
    n_genes = int(ds.meta["n_genes"])
    try:
        ds.vocab  # noqa: B018 (reading it checks it)
    except C2SError as e:
        problems.append(f"{ds.meta['vocab_file']}: {e}")
    want = ["cell_id", "genes", "split", *(["values"] if ds.has_values else [])]
    seen: set[str] = set()
    n_cells = 0
    for f, shard in zip(ds.files, ds.meta["shards"], strict=True):
        name = f.name
        try:
            t = ds._table(f)
        except C2SError as e:
            problems.append(f"{name}: cannot be read ({e.__cause__ or e})")
            continue
        missing = [c for c in [*want, *ds.obs_columns] if c not in t.column_names]
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
        if ds.has_values:
            lens_g = np.asarray(pc.list_value_length(genes).fill_null(0))
            lens_v = np.asarray(
                pc.list_value_length(t.column("values").combine_chunks()).fill_null(0)
            )
            if not np.array_equal(lens_g, lens_v):
                problems.append(f"{name}: some cells have a different number of values and genes")
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
    if n_cells != ds.n_cells and not any("cannot be read" in p for p in problems):
        problems.append(f"the shards hold {n_cells} cells, the metadata says {ds.n_cells}")
    return {"ok": not problems, "path": str(ds.path), "n_cells": n_cells, "problems": problems}
