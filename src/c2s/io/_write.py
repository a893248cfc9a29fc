"""Creating datasets: :func:`convert` (an AnnData, an .h5ad, a SOMA query or several files,
ranked chunk by chunk) and :func:`write_sentences` (in-memory cell sentences); both write to
a temporary sibling and rename it into place when complete."""

from __future__ import annotations

import os

import numpy as np

from c2s import sources
from c2s._atomic import atomic_dir
from c2s._deprecate import renamed
from c2s._errors import C2SError
from c2s._warn import warn_user
from c2s.io._dask import run_on_dask
from c2s.io._dataset import C2SDataset, read_dataset
from c2s.io._meta import (
    RESERVED,
    TIE_RULE,
    finish,
    length_stats,
    normalization_note,
    shard_name,
    split_meta,
)
from c2s.io._shards import ConvertJob, ShardWriter, cell_columns, obs_schema, run_jobs, table_schema
from c2s.io._split import assign_splits, parse_fractions
from c2s.sentences import CellSentences, Vocab

DEFAULT_CHUNK = 2048  # cells per read for one worker; divided among workers


@renamed(top_k="n_genes", out_dir="out", split="split_fractions")
def convert(
    data,
    out: str | os.PathLike,
    *,
    layer: str | None = None,
    use_raw: bool = False,
    var_names: str | None = None,
    obs_keys: list[str] | None = None,
    n_genes: int | None = None,
    seed: int = 0,
    normalize: bool = False,
    with_values: bool = True,
    split_fractions=(0.8, 0.1, 0.1),
    stratify: str | None = None,
    split_by: str | None = None,
    holdout=None,
    chunk_size: int | None = None,
    shard_size: int = 65536,
    workers: int = 1,
    overwrite: bool = False,
    progress_bar: bool | None = None,
    measurement: str = "RNA",
    x_name: str | None = None,
    obs_value_filter: str | None = None,
    var_value_filter: str | None = None,
    genes: str = "same",
    source_key: str = "source_file",
    client=None,
) -> C2SDataset:
    """Rank an AnnData, an .h5ad file or a TileDB-SOMA experiment (streamed) into a c2s
    dataset directory.

    Parameters
    ----------
    data
        AnnData (in memory or backed), a path to an ``.h5ad`` file, or a TileDB-SOMA
        experiment (a URI or an opened ``tiledbsoma.Experiment``, such as the CELLxGENE
        Census's ``census["census_data"]["homo_sapiens"]``); files and experiments are read in
        row chunks, so they may be larger than memory. A list of AnnData objects or .h5ad
        paths makes one dataset of all their cells, in order (see ``genes``, ``source_key``).
    out
        Dataset directory to create (written to a temporary sibling, renamed when complete).
    layer, use_raw
        Rank ``adata.layers[layer]`` or ``adata.raw.X`` instead of ``adata.X``.
    var_names
        A ``var`` column to take gene names from (e.g. symbols when the index holds IDs).
    obs_keys
        ``obs`` columns to carry (default: all).
    n_genes
        Keep only the top ``n_genes`` genes per cell (default: full length).
    seed
        Seed for tie-breaking and for the split.
    normalize
        The input holds raw counts: store ``log10(1 + cp10k)`` values (ranks are unchanged).
    with_values
        Store expression values next to the gene indices (needed to fit an inverse model).
    split_fractions
        Train / validation / test fractions, stored as the ``split`` column.
    stratify
        ``obs`` column whose labels are split separately (e.g. ``"cell_type"``).
    split_by, holdout
        Held-out groups, for testing on what training never saw (e.g. perturbations):
        with ``holdout`` (values of the ``obs`` column ``split_by``), those cells all go to
        test and the rest are split by ``split_fractions`` (held-out cells of the other
        values are then in test too); without it, whole values of ``split_by`` go to one
        split each.
    chunk_size
        Cells read and ranked at a time per worker (bounds memory; does not change the
        output). Default for files: ``2048 // workers`` (at least 256), which keeps a
        3,600-genes-per-cell conversion under 1.5 GB; four times that for in-memory data.
    shard_size
        Cells per Parquet shard (the unit of parallel work).
    workers
        Shards written in parallel (processes for files, threads for in-memory data).
    overwrite
        Replace an existing ``out``.
    progress_bar
        Show a progress bar (default: when stderr is a terminal).
    measurement, x_name
        SOMA: the measurement and its X layer to rank (default: ``raw`` where it exists, as
        in the Census, else the only layer).
    obs_value_filter, var_value_filter
        SOMA: the cells and genes to convert, as TileDB-SOMA value filters
        (``"tissue_general == 'lung' and is_primary_data == True"``). Cells keep their
        ``soma_joinid`` as an obs column; gene names come from ``var_names`` if given, else
        from var's ``feature_name`` where it exists (the Census's symbols), else the ids.
    genes
        Several inputs: their genes are aligned by name. ``"same"`` (default) refuses inputs
        whose gene sets differ and says how; ``"union"`` keeps every gene (one a file lacks
        counts as not expressed in its cells), ``"intersection"`` the genes every file has.
        Either is reported per file (a warning, and ``source.genes`` in the metadata).
    source_key
        Several inputs: the obs column naming each cell's input.
    client
        A ``distributed.Client``: each shard's rows are ranked and written by a worker of
        its cluster (failed tasks retried), the metadata by this process, and the directory
        renamed into place at the end; the output is the same as on one machine. Workers
        must be able to open the input (a path or SOMA URI) and write ``out``'s parent.
        A cluster left without any worker for the Dask setting ``c2s.no-workers-timeout``
        (300 s by default) ends the conversion with an error, nothing written.

    The old keyword names ``top_k=``, ``out_dir=`` and ``split=`` still work (warned).

    Returns
    -------
    The written :class:`C2SDataset`.
    """
    from c2s._atomic import check_output

    inputs = _input_paths(data)
    out = check_output(out, overwrite=overwrite, kind="dataset", inputs=inputs)
    src = sources.open_source(
        data,
        layer=layer,
        use_raw=use_raw,
        var_names=var_names,
        measurement=measurement,
        x_name=x_name,
        obs_value_filter=obs_value_filter,
        var_value_filter=var_value_filter,
        genes=genes,
        source_key=source_key,
    )
    chunk_size = _chunk_size(src, client, chunk_size, shard_size, workers)
    names = src.gene_names()
    check = _check_values(src, normalize)
    obs_keys = _carried_columns(src, obs_keys, stratify)
    fractions = parse_fractions(split_fractions)
    codes = assign_splits(
        src.n_obs,
        fractions,
        seed=seed,
        stratify=None if stratify is None else src.obs[stratify],
        **_held_out(src.obs, split_by, holdout),
    )
    schema = table_schema(obs_schema(src.obs[obs_keys]), with_values)
    bounds = [(s, min(s + shard_size, src.n_obs)) for s in range(0, src.n_obs, shard_size)]
    ranking = {"seed": seed, "n_genes": n_genes, "normalize": normalize, "with_values": with_values}
    with atomic_dir(out, overwrite=overwrite, kind="dataset", inputs=inputs) as tmp:
        jobs = _jobs(src, tmp, bounds, codes, schema, obs_keys, workers, chunk_size, **ranking)
        results = _run(jobs, src, client, workers, progress_bar)
        finish(
            tmp,
            Vocab.from_names(names, np.sum([r.n_expressed for r in results], axis=0)),
            bounds,
            source=src.provenance() | {"expression": check.kind},
            normalization=normalization_note(check.kind, normalize),
            ranking={"seed": int(seed), "top_k": n_genes, "tie_rule": TIE_RULE},
            has_values=bool(with_values),
            obs_columns=obs_keys,
            split=split_meta(codes, fractions, seed, stratify)
            | {"split_by": split_by, "holdout": None if holdout is None else list(holdout)},
            lengths=length_stats(_length_histogram(results)),
        )
    return read_dataset(out)


def _input_paths(data) -> list:
    """The input files (for the check that the output is none of them); None for data held
    in memory."""
    items = list(data) if isinstance(data, list | tuple) else [data]
    return [d if isinstance(d, str | os.PathLike) else getattr(d, "filename", None) for d in items]


def _chunk_size(src, client, chunk_size: int | None, shard_size: int, workers: int) -> int:
    """Cells read at a time per worker (default: by where the rows live), the work's sizes
    checked, and the source checked to have cells and, for a cluster, to be reopenable."""
    if client is not None and not src.reopenable:
        raise C2SError(
            "client= sends the work to Dask workers, which must open the input "
            "themselves: give an .h5ad path or a SOMA URI (adata.write_h5ad(...) "
            "first), not data held in this process."
        )
    if chunk_size is None:
        # In-memory input is resident already: bigger chunks mean fewer kernel launches.
        base = 4 * DEFAULT_CHUNK if src.in_memory else DEFAULT_CHUNK
        chunk_size = max(256, base // max(workers, 1))
    if chunk_size < 1 or shard_size < 1 or workers < 1:
        raise C2SError("chunk_size, shard_size and workers must be positive.")
    if src.n_obs == 0:
        raise C2SError(f"{src.label} has no cells; nothing to convert.")
    return chunk_size


def _check_values(src, normalize: bool):
    """What the first cells' values look like: refused when they cannot be ranked, or are
    not the counts ``normalize`` expects; warned about when they are counts kept as such."""
    from c2s.pp import check_expression, require_rankable

    sample = src.read_rows(0, min(src.n_obs, 256))
    check = check_expression(sample, n_rows=None)
    require_rankable(check, label=src.label, alternatives=list(src.other_matrices))
    if normalize and check.kind not in ("counts", "empty"):
        raise C2SError(
            f"--normalize expects raw counts, but {src.label} looks {check.describe()}. "
            "Drop --normalize."
        )
    if check.kind == "counts" and not normalize:
        warn_user(
            f"{src.label} looks like raw counts. The cell sentences are the same either way, "
            "but the stored values will be counts; pass normalize=True (--normalize) to store "
            "log10(1 + cp10k) values as the released models and the inverse transform expect.",
        )
    return check


def _carried_columns(src, obs_keys: list[str] | None, stratify: str | None) -> list[str]:
    """The obs columns the dataset carries (default: all), checked: unique cell ids, usable
    and existing column names that do not clash with the dataset's own, the stratify
    column."""
    obs = src.obs
    if obs.index.has_duplicates:  # results are joined back by cell id
        dup = obs.index[obs.index.duplicated()].unique()
        raise C2SError(
            f"{len(dup)} cell ids of {src.path or 'the AnnData'} repeat (e.g. {str(dup[0])!r}); "
            "a dataset's cell ids must be unique. Make them unique first "
            "(adata.obs_names_make_unique())."
        )
    if obs_keys is not None:
        obs_keys = [*obs_keys, *(k for k in src.always_carried if k not in obs_keys)]
    obs_keys = list(obs.columns) if obs_keys is None else list(dict.fromkeys(obs_keys))
    unnamed = [k for k in obs_keys if not isinstance(k, str) or not k.strip()]
    if unnamed:
        raise C2SError(
            f"obs has column(s) with no usable name ({unnamed}); rename them "
            "(adata.obs.rename(columns=...)) or choose the columns to carry with --obs / "
            "obs_keys=."
        )
    missing = [k for k in obs_keys if k not in obs.columns]
    if missing:
        raise C2SError(f"obs has no column(s) {missing}; available: {list(obs.columns)}.")
    clash = [k for k in obs_keys if k in RESERVED]
    if clash:
        raise C2SError(
            f"obs column(s) {clash} clash with reserved dataset columns {list(RESERVED)}; "
            "rename them or choose the columns to carry with --obs / obs_keys=."
        )
    if stratify is not None and stratify not in obs.columns:
        raise C2SError(f"Cannot stratify by {stratify!r}: no such obs column.")
    return obs_keys


def _jobs(
    src, tmp, bounds, codes, schema, obs_keys, workers: int, chunk_size: int, **ranking
) -> list[ConvertJob]:
    """One job per shard: its rows of ``src``, read ``chunk_size`` at a time and ranked as
    ``ranking`` says, written to ``tmp``. Several workers share the cores' numba threads."""
    n_threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None
    return [
        ConvertJob(
            source=src,
            shard=i,
            start=a,
            stop=b,
            path=str(tmp / shard_name(i)),
            chunk_size=chunk_size,
            obs_keys=obs_keys,
            split_codes=codes[a:b],
            schema=schema,
            n_vars=src.shape[1],
            numba_threads=n_threads,
            **ranking,
        )
        for i, (a, b) in enumerate(bounds)
    ]


def _run(jobs, src, client, workers: int, progress_bar):
    """The jobs' results, by shard: on the Dask cluster of ``client``, else here (worker
    processes for files, threads for rows held in this process)."""
    if client is not None:
        return run_on_dask(jobs, client, progress_bar=progress_bar, n_cells=src.n_obs)
    return run_jobs(jobs, workers, src.path is not None, progress_bar, src.n_obs)


def _length_histogram(results) -> np.ndarray:
    """The shards' histograms of sentence lengths, summed."""
    hist_len = max(len(r.length_hist) for r in results)
    return np.sum(
        [np.pad(r.length_hist, (0, hist_len - len(r.length_hist))) for r in results], axis=0
    )


def _held_out(obs, split_by: str | None, holdout) -> dict:
    """``assign_splits`` arguments for ``split_by`` / ``holdout``, checked against obs."""
    if split_by is None:
        if holdout is not None:
            raise C2SError("holdout= (--holdout) names values of a column: give split_by= too.")
        return {}
    if split_by not in obs.columns:
        raise C2SError(
            f"Cannot split by {split_by!r}: no such obs column; available: {list(obs.columns)}."
        )
    values = obs[split_by].astype(str).to_numpy()
    if holdout is None:
        return {"groups": values}
    held = [str(v) for v in ([holdout] if isinstance(holdout, str) else holdout)]
    unknown = sorted(set(held) - set(values))
    if unknown:
        known = sorted(set(values))
        raise C2SError(
            f"No cell has {split_by} in {unknown}; its values are {known[:20]}"
            f"{' ...' if len(known) > 20 else ''}."
        )
    return {"holdout": np.isin(values, held)}


@renamed(out_dir="out", split="split_fractions")
def write_sentences(
    sentences: CellSentences,
    out: str | os.PathLike,
    *,
    obs_keys: list[str] | None = None,
    seed: int = 0,
    split_fractions=(0.8, 0.1, 0.1),
    split_codes: np.ndarray | None = None,
    shard_size: int = 65536,
    source: dict | None = None,
    overwrite: bool = False,
) -> C2SDataset:
    """Write in-memory :class:`~c2s.sentences.CellSentences` as a c2s dataset at ``out``,
    split by ``split_fractions`` (or by the given ``split_codes``: 0 train, 1 validation, 2
    test). The old keyword names ``out_dir=`` and ``split=`` still work (warned)."""
    n = sentences.n_cells
    if n == 0:
        raise C2SError("There are no cells to write.")
    obs = sentences.obs
    obs_keys = (
        [k for k in obs.columns if k not in RESERVED]
        if obs_keys is None
        else list(dict.fromkeys(obs_keys))
    )
    fractions = parse_fractions(split_fractions)
    codes = (
        assign_splits(n, fractions, seed=seed)
        if split_codes is None
        else np.asarray(split_codes, np.int8)
    )
    with_values = sentences.values is not None
    schema = table_schema(obs_schema(obs[obs_keys]), with_values)
    ids = np.asarray(obs.index.astype(str), dtype=object)
    bounds = [(s, min(s + shard_size, n)) for s in range(0, n, shard_size)]
    with atomic_dir(out, overwrite=overwrite, kind="dataset") as tmp:
        for i, (a, b) in enumerate(bounds):
            cells = cell_columns(schema, ids[a:b], codes[a:b], obs.iloc[a:b][obs_keys])
            w = ShardWriter(tmp / shard_name(i), schema, with_values, cells)
            lo, hi = sentences.offsets[a], sentences.offsets[b]
            w.add(
                sentences.genes[lo:hi],
                None if not with_values else sentences.values[lo:hi],
                sentences.offsets[a : b + 1] - lo,
            )
            w.close()
        finish(
            tmp,
            sentences.vocab,
            bounds,
            source=source or {"file": None, "matrix": "CellSentences"},
            normalization={"values": "as given" if with_values else None},
            ranking={"seed": int(seed), "top_k": None, "tie_rule": TIE_RULE},
            has_values=with_values,
            obs_columns=obs_keys,
            split=split_meta(codes, fractions, seed, None),
            lengths=length_stats(np.bincount(sentences.lengths)),
        )
    return read_dataset(out)
