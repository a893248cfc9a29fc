"""Creating datasets: :func:`convert` (an AnnData or .h5ad, ranked chunk by chunk) and
:func:`write_sentences` (in-memory cell sentences); both write to a temporary sibling and
rename it into place when complete."""

from __future__ import annotations

import os
import warnings

import numpy as np

from c2s._atomic import atomic_dir
from c2s._errors import C2SError
from c2s.io._dask import reopenable, run_on_dask
from c2s.io._dataset import C2SDataset
from c2s.io._meta import (
    RESERVED,
    TIE_RULE,
    finish,
    length_stats,
    normalization_note,
    shard_name,
    split_meta,
)
from c2s.io._multi import open_many
from c2s.io._shards import ConvertJob, ShardWriter, cell_columns, obs_schema, run_jobs, table_schema
from c2s.io._soma import is_soma, open_soma, symbol_column
from c2s.io._split import assign_splits, parse_fractions
from c2s.sentences import CellSentences, Vocab

DEFAULT_CHUNK = 2048  # cells per read for one worker; divided among workers


def convert(
    data,
    out_dir: str | os.PathLike,
    *,
    layer: str | None = None,
    use_raw: bool = False,
    var_names: str | None = None,
    obs_keys: list[str] | None = None,
    top_k: int | None = None,
    seed: int = 0,
    normalize: bool = False,
    with_values: bool = True,
    split=(0.8, 0.1, 0.1),
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
    out_dir
        Dataset directory to create (written to a temporary sibling, renamed when complete).
    layer, use_raw
        Rank ``adata.layers[layer]`` or ``adata.raw.X`` instead of ``adata.X``.
    var_names
        A ``var`` column to take gene names from (e.g. symbols when the index holds IDs).
    obs_keys
        ``obs`` columns to carry (default: all).
    top_k
        Keep only the top ``top_k`` genes per cell (default: full length).
    seed
        Seed for tie-breaking and for the split.
    normalize
        The input holds raw counts: store ``log10(1 + cp10k)`` values (ranks are unchanged).
    with_values
        Store expression values next to the gene indices (needed to fit an inverse model).
    split
        Train / validation / test fractions, stored as the ``split`` column.
    stratify
        ``obs`` column whose labels are split separately (e.g. ``"cell_type"``).
    split_by, holdout
        Held-out groups, for testing on what training never saw (e.g. perturbations):
        with ``holdout`` (values of the ``obs`` column ``split_by``), those cells all go to
        test and the rest are split by ``split`` (held-out cells of the other values are
        then in test too); without it, whole values of ``split_by`` go to one split each.
    chunk_size
        Cells read and ranked at a time per worker (bounds memory; does not change the
        output). Default for files: ``2048 // workers`` (at least 256), which keeps a
        3,600-genes-per-cell conversion under 1.5 GB; four times that for in-memory data.
    shard_size
        Cells per Parquet shard (the unit of parallel work).
    workers
        Shards written in parallel (processes for files, threads for in-memory data).
    overwrite
        Replace an existing ``out_dir``.
    progress_bar
        Show a progress bar (default: when stderr is a terminal).
    measurement, x_name
        SOMA: the measurement and its X layer to rank (default: ``raw`` where it exists, as
        in the Census, else the only layer).
    obs_value_filter, var_value_filter
        SOMA: the cells and genes to convert, as TileDB-SOMA value filters
        (``"tissue_general == 'lung' and is_primary_data == True"``). Cells keep their
        ``soma_joinid`` as an obs column; gene names come from var's ``feature_name`` when
        it exists (the Census's symbols), else from ``var_names`` or the ids.
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
        must be able to open the input (a path or SOMA URI) and write ``out_dir``'s parent.
        A cluster left without any worker for the Dask setting ``c2s.no-workers-timeout``
        (300 s by default) ends the conversion with an error, nothing written.

    Returns
    -------
    The written :class:`C2SDataset`.
    """
    from c2s._atomic import check_output
    from c2s._matrix import open_source
    from c2s.pp import check_expression, require_rankable
    from c2s.sentences import check_gene_names

    many = isinstance(data, list | tuple)
    if many and len(data) == 1:
        data, many = data[0], False
    items = list(data) if many else [data]
    inputs = [
        d if isinstance(d, str | os.PathLike) else getattr(d, "filename", None) for d in items
    ]
    out_dir = check_output(out_dir, overwrite=overwrite, kind="dataset", inputs=inputs)
    soma = not many and is_soma(data)
    if many:
        if not items or any(is_soma(d) for d in items):
            raise C2SError("Several inputs must be AnnData objects or .h5ad files (one SOMA "
                           "experiment at a time, with a query for its cells).")  # fmt: skip
        src = open_many(items, layer=layer, use_raw=use_raw, var_names=var_names, genes=genes,
                        source_key=source_key)  # fmt: skip
    elif soma:
        if layer is not None or use_raw:
            raise C2SError("A SOMA experiment's matrix is chosen by measurement= and x_name= "
                           "(--measurement, --x-name), not layer / use_raw.")  # fmt: skip
        src = open_soma(data, measurement=measurement, x_name=x_name,
                        obs_value_filter=obs_value_filter, var_value_filter=var_value_filter)  # fmt: skip
        var_names = symbol_column(src, var_names)
    elif obs_value_filter is not None or var_value_filter is not None or x_name is not None:
        raise C2SError("obs_value_filter, var_value_filter and x_name apply to TileDB-SOMA "
                       "experiments; select an AnnData's cells and genes by slicing it.")  # fmt: skip
    else:
        src = open_source(data, layer=layer, use_raw=use_raw)
    if client is not None and not reopenable(src):
        raise C2SError("client= sends the work to Dask workers, which must open the input "
                       "themselves: give an .h5ad path or a SOMA URI (adata.write_h5ad(...) "
                       "first), not data held in this process.")  # fmt: skip
    if chunk_size is None:
        # In-memory input is resident already: bigger chunks mean fewer kernel launches.
        base = DEFAULT_CHUNK if src.path is not None or soma or many else 4 * DEFAULT_CHUNK
        chunk_size = max(256, base // max(workers, 1))
    if chunk_size < 1 or shard_size < 1 or workers < 1:
        raise C2SError("chunk_size, shard_size and workers must be positive.")
    n_cells, n_genes = src.shape
    if n_cells == 0:
        raise C2SError(f"{src.label} has no cells; nothing to convert.")
    names = check_gene_names(src.gene_names(var_names), where=f"the gene names of {src.label}")
    if many and obs_keys is not None and source_key not in obs_keys:
        obs_keys = [*obs_keys, source_key]
    sample = src.read_rows(0, min(n_cells, 256))
    check = check_expression(sample, n_rows=None)
    if check.kind == "scaled":  # the alternatives are only needed for the error message
        require_rankable(check, label=src.label, alternatives=_alternatives(data, src))
    require_rankable(check, label=src.label, alternatives=[])
    if normalize and check.kind not in ("counts", "empty"):
        raise C2SError(
            f"--normalize expects raw counts, but {src.label} looks {check.describe()}. "
            "Drop --normalize."
        )
    if check.kind == "counts" and not normalize:
        warnings.warn(
            f"{src.label} looks like raw counts. The cell sentences are the same either way, "
            "but the stored values will be counts; pass normalize=True (--normalize) to store "
            "log10(1 + cp10k) values as the released models and the inverse transform expect.",
            stacklevel=2,
        )
    obs = src.obs
    if obs.index.has_duplicates:  # results are joined back by cell id
        dup = obs.index[obs.index.duplicated()].unique()
        raise C2SError(
            f"{len(dup)} cell ids of {src.path or 'the AnnData'} repeat (e.g. {str(dup[0])!r}); "
            "a dataset's cell ids must be unique. Make them unique first "
            "(adata.obs_names_make_unique())."
        )
    obs_keys = list(obs.columns) if obs_keys is None else list(dict.fromkeys(obs_keys))
    unnamed = [k for k in obs_keys if not isinstance(k, str) or not k.strip()]
    if unnamed:
        raise C2SError(
            f"obs has column(s) with no usable name ({unnamed}); rename them "
            "(adata.obs.rename(columns=...)) or choose the columns to carry with --obs / obs_keys=."
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
    fractions = parse_fractions(split)
    codes = assign_splits(
        n_cells, fractions, seed=seed, stratify=None if stratify is None else obs[stratify],
        **_held_out(obs, split_by, holdout),
    )  # fmt: skip
    schema = table_schema(obs_schema(obs[obs_keys]), with_values)
    bounds = [(s, min(s + shard_size, n_cells)) for s in range(0, n_cells, shard_size)]
    use_processes = src.path is not None
    n_threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None

    with atomic_dir(out_dir, overwrite=overwrite, kind="dataset", inputs=inputs) as tmp:
        jobs = [
            ConvertJob(
                src,
                i,
                a,
                b,
                str(tmp / shard_name(i)),
                chunk_size,
                seed,
                top_k,
                normalize,
                with_values,
                obs_keys,
                codes[a:b],
                schema,
                n_genes,
                n_threads,
            )
            for i, (a, b) in enumerate(bounds)
        ]
        if client is not None:
            results = run_on_dask(jobs, client, progress_bar=progress_bar, n_cells=n_cells)
        else:
            results = run_jobs(jobs, workers, use_processes, progress_bar, n_cells)
        n_expressed = np.sum([r.n_expressed for r in results], axis=0)
        hist_len = max(len(r.length_hist) for r in results)
        hist = np.sum(
            [np.pad(r.length_hist, (0, hist_len - len(r.length_hist))) for r in results], axis=0
        )
        finish(
            tmp,
            Vocab.from_names(names, n_expressed),
            bounds,
            source={
                "file": src.names if many else src.path and os.path.basename(src.path),
                **({"soma": src.uri} if soma else {}),
                **({"genes": src.report} if many else {}),
                "matrix": src.label,
                "var_names": var_names,
                "expression": check.kind,
            },
            normalization=normalization_note(check.kind, normalize),
            ranking={"seed": int(seed), "top_k": top_k, "tie_rule": TIE_RULE},
            has_values=bool(with_values),
            obs_columns=obs_keys,
            split=split_meta(codes, fractions, seed, stratify)
            | {"split_by": split_by, "holdout": None if holdout is None else list(holdout)},
            lengths=length_stats(hist),
        )
    return C2SDataset(out_dir)


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


def _alternatives(data, src) -> list[str]:
    try:
        import anndata as ad
    except ImportError:  # pragma: no cover
        return []
    out = []
    if isinstance(data, ad.AnnData) and not data.isbacked:
        if data.raw is not None and src.where != "raw":
            out.append("adata.raw (--raw)")
        out += [f"layer {k!r} (--layer {k})" for k in data.layers if f"layers/{k}" != src.where]
        return out
    path = src.path
    if path is None:
        return out
    import h5py

    with h5py.File(path, "r") as f:
        if "raw" in f and src.where != "raw":
            out.append("adata.raw (--raw)")
        out += [
            f"layer {k!r} (--layer {k})" for k in f.get("layers", {}) if f"layers/{k}" != src.where
        ]
    return out


def write_sentences(
    sentences: CellSentences,
    out_dir: str | os.PathLike,
    *,
    obs_keys: list[str] | None = None,
    seed: int = 0,
    split=(0.8, 0.1, 0.1),
    split_codes: np.ndarray | None = None,
    shard_size: int = 65536,
    source: dict | None = None,
    overwrite: bool = False,
) -> C2SDataset:
    """Write in-memory :class:`~c2s.sentences.CellSentences` as a c2s dataset."""
    n = sentences.n_cells
    if n == 0:
        raise C2SError("There are no cells to write.")
    obs = sentences.obs
    obs_keys = (
        [k for k in obs.columns if k not in RESERVED]
        if obs_keys is None
        else list(dict.fromkeys(obs_keys))
    )
    fractions = parse_fractions(split)
    codes = (
        assign_splits(n, fractions, seed=seed)
        if split_codes is None
        else np.asarray(split_codes, np.int8)
    )
    with_values = sentences.values is not None
    schema = table_schema(obs_schema(obs[obs_keys]), with_values)
    ids = np.asarray(obs.index.astype(str), dtype=object)
    bounds = [(s, min(s + shard_size, n)) for s in range(0, n, shard_size)]
    with atomic_dir(out_dir, overwrite=overwrite, kind="dataset") as tmp:
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
    return C2SDataset(out_dir)
