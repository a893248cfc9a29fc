"""A TileDB-SOMA Experiment (the format of the CELLxGENE Census) as a source of expression
rows: an axis query's cells and genes, read in blocks of cells, in ``soma_joinid`` order.

A local or remote experiment is opened by URI, and each worker process reopens it; an
experiment the caller already opened (``cellxgene_census.open_soma()["census_data"]
["homo_sapiens"]``) is read through that handle, in this process.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from c2s._errors import C2SError
from c2s.sources._matrix import MatrixSource

# var columns that name genes (Census: feature_name symbols, feature_id Ensembl ids)
SYMBOL_COLUMN = "feature_name"
_ID_COLUMNS = {"obs": ("obs_id",), "var": ("var_id", "feature_id")}


def is_soma(data) -> bool:
    """A TileDB-SOMA object, or a path / URI of one (a TileDB group directory, or a
    ``tiledb://`` / ``s3://`` ... URI)."""
    if type(data).__module__.startswith("tiledbsoma"):
        return True
    if not isinstance(data, str | os.PathLike):
        return False
    text = str(data)
    if "://" in text and not text.startswith("file://"):
        return True
    path = text.removeprefix("file://")
    return os.path.isdir(path) and os.path.exists(os.path.join(path, "__tiledb_group.tdb"))


@dataclass
class SomaSource(MatrixSource):
    """Rows of one X layer of one measurement, restricted to a query's cells and genes."""

    uri: str = ""
    measurement: str = "RNA"
    x_name: str = "raw"
    obs_ids: np.ndarray = field(default=None, repr=False)
    var_ids: np.ndarray = field(default=None, repr=False)
    all_vars: bool = True  # no var filter: read whole rows
    handle: object = field(default=None, repr=False)  # an experiment the caller opened

    @property
    def label(self) -> str:
        return f"SOMA {self.uri} ms[{self.measurement!r}].X[{self.x_name!r}]"

    @property
    def reopenable(self) -> bool:
        """Workers in other processes can open it again by URI."""
        return self.handle is None

    @property
    def in_memory(self) -> bool:
        return False

    def provenance(self) -> dict:
        return super().provenance() | {"soma": self.uri}

    def __getstate__(self):
        if self.handle is not None:
            raise C2SError("An opened SOMA experiment cannot be sent to worker processes.")
        return self.__dict__.copy()

    @contextlib.contextmanager
    def _x(self):
        if self.handle is not None:
            yield self.handle.ms[self.measurement].X[self.x_name]
            return
        import tiledbsoma

        with tiledbsoma.Experiment.open(self.uri) as exp:
            yield exp.ms[self.measurement].X[self.x_name]

    def _block(self, x_array, start: int, stop: int):
        ids = self.obs_ids[start:stop]
        cols = slice(None) if self.all_vars else self.var_ids
        tbl = x_array.read((ids, cols)).tables().concat()
        rows = np.searchsorted(ids, tbl.column("soma_dim_0").to_numpy())
        genes = np.searchsorted(self.var_ids, tbl.column("soma_dim_1").to_numpy())
        data = tbl.column("soma_data").to_numpy()
        if data.dtype == np.float16:
            data = data.astype(np.float32)
        m = sp.csr_matrix((data, (rows, genes)), shape=(stop - start, len(self.var_ids)))
        m.sum_duplicates()  # canonical: sorted genes within each row, as an .h5ad's CSR
        return m.indptr, m.indices, m.data

    def read_rows_raw(self, start: int, stop: int):
        with self._x() as x_array:
            return self._block(x_array, start, stop)

    def iter_rows(self, start: int, stop: int, chunk_size: int):
        with self._x() as x_array:
            for a in range(start, stop, chunk_size):
                b = min(a + chunk_size, stop)
                yield (a, b, *self._block(x_array, a, b))


def _need_tiledbsoma():
    try:
        import tiledbsoma
    except ImportError as e:
        raise ImportError(
            "Reading SOMA experiments needs tiledbsoma: pip install 'c2s[soma]'"
        ) from e
    return tiledbsoma


def open_soma(
    data,
    *,
    measurement: str = "RNA",
    x_name: str | None = None,
    obs_value_filter: str | None = None,
    var_value_filter: str | None = None,
    var_names: str | None = None,
) -> SomaSource:
    """A :class:`SomaSource` over the cells and genes ``data`` (a URI, or an opened
    ``tiledbsoma.Experiment``) selects with the two value filters (TileDB-SOMA query
    conditions, ``"tissue_general == 'lung' and is_primary_data == True"``). ``x_name``
    defaults to ``raw`` when the measurement has it (the Census), else its only layer. Gene
    names come from the var column ``var_names``, else ``feature_name`` where var has it
    (the Census's symbols), else var's ids."""
    tiledbsoma = _need_tiledbsoma()
    handle, uri, opened = _experiment(tiledbsoma, data)
    with opened as exp:
        x_name = _x_layer(exp, measurement, x_name)
        obs_ids, var_ids = _query(tiledbsoma, exp, measurement, obs_value_filter, var_value_filter)
        obs = _table(exp.obs, obs_ids, "obs")
        var = _table(exp.ms[measurement].var, var_ids, "var")
    if var_names is None and SYMBOL_COLUMN in var.columns:
        var_names = SYMBOL_COLUMN
    return SomaSource(
        where=f"soma:{measurement}/{x_name}",
        shape=(len(obs_ids), len(var_ids)),
        var=var,
        obs=obs,
        var_names=var_names,
        uri=uri,
        measurement=measurement,
        x_name=x_name,
        obs_ids=obs_ids,
        var_ids=var_ids,
        all_vars=var_value_filter is None,
        handle=handle,
    )


def _experiment(tiledbsoma, data):
    """``(handle, uri, context)``: an experiment the caller opened is read through its
    handle (and left open); a URI is opened here."""
    if isinstance(data, tiledbsoma.Experiment):
        return data, data.uri, contextlib.nullcontext(data)
    if isinstance(data, tiledbsoma.Collection):
        hint = (
            " (the Census: census['census_data']['homo_sapiens'])" if "census_data" in data else ""
        )
        raise C2SError(
            f"{data.uri} is a SOMA collection, not an experiment; pass one of its "
            f"experiments{hint}."
        )
    uri = str(data)
    try:
        return None, uri, tiledbsoma.Experiment.open(uri)
    except (tiledbsoma.SOMAError, ValueError, TypeError) as e:
        raise C2SError(f"Cannot open {uri!r} as a SOMA experiment: {e}") from e


def _x_layer(exp, measurement: str, x_name: str | None) -> str:
    """The X layer to read: ``x_name``, else ``raw`` where it exists, else the only one."""
    ms = list(exp.ms.keys())
    if measurement not in ms:
        raise C2SError(f"The experiment has no measurement {measurement!r}; available: {ms}.")
    layers = list(exp.ms[measurement].X.keys())
    if x_name is None:
        x_name = "raw" if "raw" in layers or len(layers) != 1 else layers[0]
    if x_name not in layers:
        raise C2SError(f"ms[{measurement!r}] has no X layer {x_name!r}; available: {layers}.")
    return x_name


def _query(tiledbsoma, exp, measurement: str, obs_filter, var_filter):
    """The sorted ``soma_joinid``s of the cells and genes the value filters select (each
    axis at least one)."""
    query = {}
    for axis, expr in (("obs", obs_filter), ("var", var_filter)):
        if expr is not None:
            query[f"{axis}_query"] = tiledbsoma.AxisQuery(value_filter=expr)
    try:
        with exp.axis_query(measurement, **query) as q:
            obs_ids = np.sort(q.obs_joinids().to_numpy())
            var_ids = np.sort(q.var_joinids().to_numpy())
    except tiledbsoma.SOMAError as e:
        given = [x for x in (obs_filter, var_filter) if x is not None]
        raise C2SError(f"Bad filter {' / '.join(map(repr, given))}: {_first_line(e)}") from e
    for axis, ids, expr in (("obs", obs_ids, obs_filter), ("var", var_ids, var_filter)):
        if len(ids) == 0:
            what = "cells" if axis == "obs" else "genes"
            why = f"the {axis} filter {expr!r} selects" if expr else "the experiment has"
            raise C2SError(f"Nothing to convert: {why} no {what}.")
    return obs_ids, var_ids


def _table(df, ids: np.ndarray, axis: str) -> pd.DataFrame:
    """The rows ``ids`` of a SOMA DataFrame in ``soma_joinid`` order, indexed by the
    axis's id column (``obs_id``; ``var_id`` or ``feature_id``) or by ``soma_joinid``;
    ``soma_joinid`` stays a column, so results can be joined back to the experiment."""
    t = df.read(coords=(ids,)).concat().to_pandas().sort_values("soma_joinid")
    t = t.reset_index(drop=True)
    for name in _ID_COLUMNS[axis]:
        if name in t.columns:
            return t.set_index(name).rename_axis(None)
    t.index = t["soma_joinid"].astype(str)
    return t


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def read_soma(
    data,
    *,
    measurement: str = "RNA",
    x_name: str | None = None,
    obs_value_filter: str | None = None,
    var_value_filter: str | None = None,
    var_names: str | None = None,
    chunk_size: int = 4096,
):
    """The cells a SOMA query selects as an in-memory AnnData (CSR, read a block of cells at
    a time), for the model verbs: ``obs`` keeps ``soma_joinid`` (to join results back to the
    experiment); genes are named by ``var_names``, else ``feature_name`` where var has it,
    else var's ids. For more cells than fit in memory, :func:`~c2s.io.convert` the query
    and run the verbs on the dataset (which keeps ``soma_joinid`` too)."""
    import anndata as ad

    src = open_soma(
        data,
        measurement=measurement,
        x_name=x_name,
        obs_value_filter=obs_value_filter,
        var_value_filter=var_value_filter,
        var_names=var_names,
    )
    names = src.gene_names()
    blocks = [
        sp.csr_matrix((d, i, p), shape=(b - a, src.shape[1]))
        for a, b, p, i, d in src.iter_rows(0, src.n_obs, chunk_size)
    ]
    var = src.var.copy()
    var.index = pd.Index(names, dtype=object)
    obs = src.obs.copy()
    obs.index = obs.index.astype(str)
    return ad.AnnData(X=sp.vstack(blocks, format="csr"), obs=obs, var=var)
