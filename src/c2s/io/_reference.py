"""Import and export of the reference package's Arrow dataset layout (docs/formats.md).

The reference layout is a Hugging Face ``datasets`` directory (``save_to_disk``) with one row
per cell: ``cell_name``, ``cell_sentence`` (upper-cased gene names joined by spaces, full
length) and label columns. Its vocabulary (upper-cased gene -> cells expressed) is not part
of that directory; on export we add it as ``vocabulary.json`` beside the data so that it can
be handed to the reference's tools, and on import we use it when present.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from c2s._atomic import atomic_dir, check_output
from c2s._deprecate import renamed
from c2s._errors import C2SError
from c2s._logging import progress, progress_enabled
from c2s.io._check import refuse_damaged
from c2s.io._dataset import C2SDataset, as_dataset
from c2s.io._split import SPLITS
from c2s.io._write import write_sentences
from c2s.sentences import CellSentences, Vocab

REFERENCE_VOCAB_FILE = "vocabulary.json"
_RESERVED = ("cell_name", "cell_sentence")


@contextlib.contextmanager
def _quiet_datasets(datasets, progress_bar):
    """Hugging Face datasets' own bars follow c2s's progress setting."""
    was = datasets.is_progress_bar_enabled()
    if not progress_enabled(progress_bar):
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was:
            datasets.enable_progress_bars()


def _need_datasets():
    try:
        import datasets
    except ImportError as e:
        raise ImportError(
            "The reference Arrow layout is read and written with Hugging Face datasets: "
            "pip install 'c2s[hf]'"
        ) from e
    return datasets


@renamed(out_dir="out")
def export_reference(
    dataset: C2SDataset | str | os.PathLike,
    out: str | os.PathLike,
    *,
    obs_keys: list[str] | None = None,
    batch_size: int = 2048,
    overwrite: bool = False,
    progress_bar: bool | None = None,
) -> Path:
    """Write a c2s dataset in the reference package's Arrow layout.

    Parameters
    ----------
    dataset
        A :class:`C2SDataset` or its path.
    out
        Output directory (``datasets`` ``save_to_disk`` layout plus ``vocabulary.json``;
        ``out_dir=``, its old name, still works, warned).
    obs_keys
        Label columns to include (default: every carried obs column); values are written as
        strings, as the reference does.
    batch_size
        Cells rendered to text at a time (bounds memory).
    overwrite
        Replace an existing ``out``.

    Returns
    -------
    The output path.
    """
    datasets = _need_datasets()
    ds = as_dataset(dataset)
    out = check_output(out, overwrite=overwrite, kind="reference", inputs=[ds.path])
    keys = ds.obs_columns if obs_keys is None else list(obs_keys)
    bad = [k for k in keys if k in _RESERVED]
    if bad:
        raise C2SError(f"obs columns {bad} clash with the reference's reserved column names.")
    missing = [k for k in keys if k not in ds.obs_columns]
    if missing:
        raise C2SError(f"The dataset carries no obs column(s) {missing}; it has {ds.obs_columns}.")
    vocab = ds.vocab
    features = datasets.Features(
        {"cell_name": datasets.Value("string"), "cell_sentence": datasets.Value("string")}
        | {k: datasets.Value("string") for k in keys}
    )

    def rows():
        cs = ds.sentences(values=False, obs_columns=keys)
        refuse_damaged(ds, cs)  # nothing is copied from a damaged dataset
        bar = progress(total=cs.n_cells, desc="export", unit="cells", enabled=progress_bar)
        for a in range(0, cs.n_cells, batch_size):
            part = cs.take(np.arange(a, min(a + batch_size, cs.n_cells)))
            texts = part.to_text()
            obs = part.obs
            cols = {k: obs[k].astype(str).tolist() for k in keys}
            for i, (name, text) in enumerate(zip(obs.index.astype(str), texts, strict=True)):
                yield {"cell_name": name, "cell_sentence": text} | {k: cols[k][i] for k in keys}
            bar.update(part.n_cells)
        bar.close()

    with atomic_dir(out, overwrite=overwrite, kind="reference", inputs=[ds.path]) as tmp:
        cache = tmp / ".cache"
        try:
            with _quiet_datasets(datasets, progress_bar):
                hf = datasets.Dataset.from_generator(rows, features=features, cache_dir=str(cache))
        except datasets.exceptions.DatasetGenerationError as e:
            cause = e.__cause__ or e.__context__
            if isinstance(cause, C2SError):  # our own message (e.g. a damaged shard)
                raise cause from None
            raise
        if len(hf) != ds.n_cells:  # nothing is written unless every cell was
            raise C2SError(f"Exported {len(hf)} cells, but {ds.path} says it holds {ds.n_cells}.")
        data_dir = tmp / "data"
        with _quiet_datasets(datasets, progress_bar):
            hf.save_to_disk(str(data_dir))
        del hf
        # save_to_disk writes into a fresh directory; move its files up and drop the cache.
        for f in data_dir.iterdir():
            os.replace(f, tmp / f.name)
        data_dir.rmdir()
        import shutil

        shutil.rmtree(cache, ignore_errors=True)
        ordered = {
            str(g): int(c)
            for g, c in zip(vocab.display_names, vocab.n_cells_expressed, strict=True)
        }
        (tmp / REFERENCE_VOCAB_FILE).write_text(json.dumps(ordered, indent=0) + "\n")
    return Path(out)


@renamed(out_dir="out", split="split_fractions")
def import_reference(
    arrow_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    vocabulary: str | os.PathLike | None = None,
    seed: int = 0,
    split_fractions=(0.8, 0.1, 0.1),
    overwrite: bool = False,
) -> C2SDataset:
    """Turn a reference-layout Arrow dataset (``save_to_disk``) into a c2s dataset.

    Parameters
    ----------
    arrow_dir
        Directory saved by the reference package (a ``Dataset`` or a ``DatasetDict``; the
        splits of a ``DatasetDict`` named train/validation/test are kept).
    out
        The c2s dataset directory to write.
    vocabulary
        A JSON file mapping gene -> cells expressed, in vocabulary order (default:
        ``vocabulary.json`` inside ``arrow_dir`` if present, else genes in order of first
        appearance).
    seed, split_fractions
        Seeded split for a single ``Dataset``.
    overwrite
        Replace an existing ``out``.

    The old keyword names ``out_dir=`` and ``split=`` still work (warned).

    Returns
    -------
    The written :class:`C2SDataset` (sentences only: the reference layout has no values).
    """
    datasets = _need_datasets()
    arrow_dir = Path(arrow_dir)
    check_output(out, overwrite=overwrite, kind="dataset", inputs=[arrow_dir])
    parts = _reference_parts(datasets, arrow_dir)
    vocab = _reference_vocab(arrow_dir, vocabulary)
    texts, obs, split_codes = _reference_cells(parts, arrow_dir)
    cs = CellSentences.from_text(texts, vocab, obs=obs)
    return write_sentences(
        cs,
        out,
        seed=seed,
        split_fractions=split_fractions,
        split_codes=split_codes,
        source={"file": arrow_dir.name, "matrix": "reference Arrow dataset"},
        overwrite=overwrite,
    )


def _reference_parts(datasets, arrow_dir: Path) -> list:
    """``(split name or None, Dataset)`` of each part ``arrow_dir`` holds, checked to be
    cell sentences."""
    if not arrow_dir.is_dir():
        raise C2SError(f"{str(arrow_dir)!r} is not a directory.")
    try:
        loaded = datasets.load_from_disk(str(arrow_dir))
    # FileNotFoundError: not save_to_disk output; IndexError: datasets cannot open an empty
    # one; ValueError / OSError: damaged Arrow files.
    except (FileNotFoundError, IndexError, ValueError, OSError) as e:
        raise C2SError(
            f"{str(arrow_dir)!r} cannot be loaded as a dataset saved with "
            f"datasets.save_to_disk ({type(e).__name__}: {e}); an empty or damaged dataset?"
        ) from e
    if isinstance(loaded, datasets.DatasetDict):
        parts = [(name, loaded[name]) for name in loaded]
    else:
        parts = [(None, loaded)]
    for _, part in parts:
        missing = [c for c in _RESERVED if c not in part.column_names]
        if missing:
            raise C2SError(
                f"{str(arrow_dir)!r} has no column(s) {missing}: not a reference cell-sentence "
                f"dataset (columns: {part.column_names})."
            )
    return parts


def _reference_vocab(arrow_dir: Path, vocabulary) -> Vocab | None:
    """The vocabulary of ``vocabulary`` (or of ``vocabulary.json`` beside the data); None
    when there is none (genes are then taken in order of first appearance)."""
    vpath = Path(vocabulary) if vocabulary is not None else arrow_dir / REFERENCE_VOCAB_FILE
    if not vpath.exists():
        if vocabulary is not None:
            raise C2SError(f"Vocabulary file {str(vpath)!r} does not exist.")
        return None
    try:
        mapping = json.loads(vpath.read_text())
    except (OSError, ValueError) as e:
        raise C2SError(f"Cannot read the vocabulary {str(vpath)!r}: {e}.") from e
    if not isinstance(mapping, dict | list) or not all(isinstance(g, str) for g in mapping):
        raise C2SError(f"{str(vpath)!r} must map gene names to cell counts (or list gene names).")
    return Vocab.from_names(list(mapping))


def _reference_cells(parts, arrow_dir: Path):
    """Every part's sentences (text), their obs (label columns as categories, indexed by
    cell name) and, for a DatasetDict, the split code of each cell (else None)."""
    texts, obs_parts, split_codes = [], [], []
    for name, part in parts:
        cols = part.column_names
        label_cols = [c for c in cols if c not in _RESERVED]
        texts += part["cell_sentence"]
        obs = (
            part.select_columns(label_cols).to_pandas()
            if label_cols
            else pd.DataFrame(index=range(len(part)))
        )
        obs.index = pd.Index(part["cell_name"]).astype(str)
        obs_parts.append(obs)
        if name is not None:
            if name not in SPLITS:
                raise C2SError(
                    f"Unknown split name {name!r} in {arrow_dir}; expected {list(SPLITS)}."
                )
            split_codes.append(np.full(len(part), SPLITS.index(name), dtype=np.int8))
    obs = pd.concat(obs_parts)
    if len(obs) == 0:
        raise C2SError(f"{str(arrow_dir)!r} holds no cells.")
    for c in obs.columns:
        if obs[c].dtype == object:
            obs[c] = obs[c].astype("category")
    return texts, obs, np.concatenate(split_codes) if split_codes else None
