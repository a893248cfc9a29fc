"""The dataset directory's metadata: file names, the schema version, and
``c2s_dataset.json`` (written atomically, next to ``vocab.parquet``).

```
dataset/
  c2s_dataset.json    schema version, vocab file, normalization, seed, tie rule, source,
                      n_cells, package version, shards, split, fitted inverse model
  vocab.parquet       gene, display_name, n_cells_expressed
  cells-00000.parquet cell_id, genes list<int32>, values list<float32>, split, obs columns
```
Shard ``i`` holds cells ``[i * shard_size, (i + 1) * shard_size)`` and row groups of a fixed
number of cells, so the files are identical whatever the chunk size and worker count.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from c2s._version import __version__
from c2s.io._split import SPLITS
from c2s.sentences import Vocab

SCHEMA_VERSION = 1
META_FILE = "c2s_dataset.json"
VOCAB_FILE = "vocab.parquet"
ROW_GROUP = 1024
RESERVED = ("cell_id", "genes", "values", "split")
TIE_RULE = (
    "values > 0 sorted descending; ties in a random order from a Fisher-Yates shuffle of the "
    "cell's genes (ascending index order) driven by splitmix64 seeded with (seed, cell index)"
)


def shard_name(i: int) -> str:
    return f"cells-{i:05d}.parquet"


def normalization_note(kind: str, normalized_here: bool) -> dict:
    if normalized_here:
        return {"values": "log10(1 + x / total * 1e4)", "applied_by": "c2s", "input": "counts"}
    return {"values": "as given", "applied_by": None, "input": kind}


def split_meta(codes, fractions, seed, stratify) -> dict:
    counts = np.bincount(codes, minlength=3)
    return {
        "seed": int(seed),
        "fractions": dict(zip(SPLITS, fractions, strict=True)),
        "counts": {s: int(c) for s, c in zip(SPLITS, counts, strict=True)},
        "stratify": stratify,
        "column": "split",
    }


def length_stats(hist: np.ndarray) -> dict:
    n = int(hist.sum())
    if n == 0:
        return {"mean": 0.0, "min": 0, "median": 0, "max": 0, "n_empty": 0}
    lens = np.arange(len(hist))
    cdf = np.cumsum(hist)
    return {
        "mean": float((hist * lens).sum() / n),
        "min": int(lens[hist > 0][0]),
        "median": int(np.searchsorted(cdf, (n + 1) // 2)),
        "max": int(lens[hist > 0][-1]),
        "n_empty": int(hist[0]),
    }


def finish(directory: Path, vocab: Vocab, bounds, **fields) -> None:
    """Write vocab.parquet and c2s_dataset.json next to the shards in ``directory``."""
    pq.write_table(
        pa.Table.from_pandas(vocab.to_frame(), preserve_index=False), directory / VOCAB_FILE
    )
    meta = {
        "format": "c2s-dataset",
        "schema_version": SCHEMA_VERSION,
        "package_version": __version__,
        "vocab_file": VOCAB_FILE,
        "n_cells": int(bounds[-1][1]),
        "n_genes": len(vocab),
        "shards": [{"file": shard_name(i), "n_cells": b - a} for i, (a, b) in enumerate(bounds)],
        **fields,
        "inverse": None,
    }
    write_meta(directory, meta)


def write_meta(directory: Path, meta: dict) -> None:
    """Write c2s_dataset.json atomically (temp file + rename)."""
    path = Path(directory) / META_FILE
    tmp = path.with_name(f".{META_FILE}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
