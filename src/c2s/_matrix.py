"""Row-chunk access to an expression matrix: in-memory AnnData or an .h5ad file on disk.

Files are read with h5py directly, one block of CSR rows at a time, so a file larger than
memory streams in bounded memory and each worker process can open it on its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from c2s._errors import C2SError


def _where(layer: str | None, use_raw: bool) -> str:
    if layer is not None and use_raw:
        raise C2SError("Choose either a layer or .raw, not both.")
    if use_raw:
        return "raw"
    return f"layers/{layer}" if layer is not None else "X"


def _describe(where: str) -> str:
    if where.startswith("layers/"):
        return f"adata.layers[{where.split('/', 1)[1]!r}]"
    return {"X": "adata.X", "raw": "adata.raw.X"}[where]


@dataclass
class MatrixSource:
    """Rows of one expression matrix (X, a layer, or raw.X) with its gene names and obs."""

    where: str
    shape: tuple[int, int]
    var: pd.DataFrame
    obs: pd.DataFrame
    path: str | None = None  # set for files: workers reopen it
    _matrix: object = None  # in-memory matrix (CSR or dense)

    @property
    def n_obs(self) -> int:
        return self.shape[0]

    @property
    def label(self) -> str:
        return _describe(self.where)

    def gene_names(self, var_names: str | None = None) -> np.ndarray:
        if var_names is None:
            return np.asarray(self.var.index.astype(str), dtype=object)
        if var_names not in self.var.columns:
            raise C2SError(
                f"var has no column {var_names!r} to take gene names from; "
                f"available: {list(self.var.columns)}."
            )
        col = self.var[var_names]
        empty = col.isna().to_numpy() | (col.astype(str).str.strip() == "").to_numpy()
        if empty.any():
            raise C2SError(
                f"{int(empty.sum())} genes have no name in var[{var_names!r}] (e.g. "
                f"{list(self.var.index[empty][:3])}); fill them in (for example from the var "
                "index) or take names from another column."
            )
        return np.asarray(col.astype(str), dtype=object)

    def read_rows(self, start: int, stop: int) -> sp.csr_matrix:
        """Rows ``[start, stop)`` as a scipy CSR matrix."""
        indptr, indices, data = self.read_rows_raw(start, stop)
        return sp.csr_matrix(
            (data, indices, indptr - indptr[0]), shape=(stop - start, self.shape[1])
        )

    def read_rows_raw(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows ``[start, stop)`` as CSR ``(indptr, indices, data)``; ``indptr`` may not start
        at 0. In-memory CSR rows are views (scipy would copy them)."""
        if self.path is None:
            X = self._matrix
            if sp.issparse(X):
                a, b = int(X.indptr[start]), int(X.indptr[stop])
                return X.indptr[start : stop + 1], X.indices[a:b], X.data[a:b]
            block = sp.csr_matrix(_widen(np.asarray(X[start:stop])))
            return block.indptr, block.indices, block.data
        import h5py

        with h5py.File(self.path, "r") as f:
            return _h5_rows(f, self.where, start, stop, self.shape[1])

    def iter_rows(self, start: int, stop: int, chunk_size: int):
        """Yield ``(a, b, indptr, indices, data)`` for consecutive row blocks of ``[start,
        stop)``; a file is opened once for the whole walk."""
        if self.path is None:
            for a in range(start, stop, chunk_size):
                b = min(a + chunk_size, stop)
                yield (a, b, *self.read_rows_raw(a, b))
            return
        import h5py

        with h5py.File(self.path, "r") as f:
            for a in range(start, stop, chunk_size):
                b = min(a + chunk_size, stop)
                yield (a, b, *_h5_rows(f, self.where, a, b, self.shape[1]))


def _widen(x: np.ndarray) -> np.ndarray:
    """float16 (which scipy.sparse and the rank kernel do not take) as float32; ranks and
    values are unchanged."""
    return x.astype(np.float32) if x.dtype == np.float16 else x


def _h5_group_path(where: str) -> str:
    return "raw/X" if where == "raw" else where


def _h5_rows(f, where: str, start: int, stop: int, n_vars: int):
    """Rows ``[start, stop)`` of an open .h5ad as CSR ``(indptr, indices, data)``."""
    import h5py

    node = f[_h5_group_path(where)]
    if isinstance(node, h5py.Dataset):
        X = sp.csr_matrix(_widen(node[start:stop]))
        return X.indptr, X.indices, X.data
    enc = node.attrs.get("encoding-type", "")
    if enc == "csr_matrix" or node.attrs.get("h5sparse_format", "") == "csr":
        indptr = node["indptr"][start : stop + 1]
        a, b = int(indptr[0]), int(indptr[-1])
        return indptr - a, node["indices"][a:b], _widen(node["data"][a:b])
    if enc == "csc_matrix":
        # Column-major storage cannot be read by rows without reading everything.
        from anndata.io import read_elem

        X = sp.csr_matrix(read_elem(node)[start:stop])
        return X.indptr, X.indices, X.data
    raise C2SError(f"Unsupported matrix encoding {enc!r} at {where!r} in {f.filename}.")


def open_source(data, *, layer: str | None = None, use_raw: bool = False) -> MatrixSource:
    """A :class:`MatrixSource` over an AnnData object, a backed AnnData, or an .h5ad path."""
    where = _where(layer, use_raw)
    if isinstance(data, str | os.PathLike):
        return _open_file(Path(data), where)
    import anndata as ad

    if not isinstance(data, ad.AnnData):
        raise C2SError(f"Expected an AnnData object or an .h5ad path, got {type(data).__name__}.")
    if data.isbacked:
        return _open_file(Path(data.filename), where)
    if where == "raw":
        if data.raw is None:
            raise C2SError("adata.raw is empty; choose adata.X (default) or a layer.")
        X, var = data.raw.X, data.raw.var
    elif where == "X":
        X, var = data.X, data.var
    else:
        name = where.split("/", 1)[1]
        if name not in data.layers:
            raise C2SError(f"No layer {name!r} in adata.layers; available: {list(data.layers)}.")
        X, var = data.layers[name], data.var
    if X is None:
        raise C2SError(f"{_describe(where)} is empty.")
    if sp.issparse(X) and X.format != "csr":
        X = X.tocsr()  # row slicing of CSC is O(nnz) per slice: convert once
    elif not sp.issparse(X):
        X = np.asarray(X)
    return MatrixSource(where, tuple(X.shape), var, data.obs, None, X)


def _open_file(path: Path, where: str) -> MatrixSource:
    import h5py
    from anndata.io import read_elem

    if not path.exists():
        raise C2SError(f"Input file {str(path)!r} does not exist.")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise C2SError(f"Cannot open {str(path)!r} as an .h5ad (HDF5) file: {e}") from e
    with f:
        gpath = _h5_group_path(where)
        if gpath not in f:
            avail = ["X"] + [f"layers/{k}" for k in f.get("layers", {})]
            if "raw" in f:
                avail.append("raw")
            raise C2SError(f"{str(path)!r} has no {_describe(where)}; available: {avail}.")
        node = f[gpath]
        shape = tuple(node.shape) if isinstance(node, h5py.Dataset) else tuple(node.attrs["shape"])
        var = read_elem(f["raw/var" if where == "raw" else "var"])
        obs = read_elem(f["obs"])
        if not isinstance(obs, pd.DataFrame) or not isinstance(var, pd.DataFrame):
            raise C2SError(
                f"The obs or var table of {str(path)!r} does not read back as a table (a "
                "column with an empty name?). Fix it with anndata (adata.obs.rename(...)) and "
                "save the file again."
            )
        enc = "" if isinstance(node, h5py.Dataset) else node.attrs.get("encoding-type", "")
    if enc == "csc_matrix":
        import warnings

        warnings.warn(
            f"{_describe(where)} in {path.name} is stored column-wise (CSC): reading it by "
            "rows loads the whole matrix for every chunk. Save it as CSR for streaming "
            "(adata.X = adata.X.tocsr(); adata.write_h5ad(...)).",
            stacklevel=3,
        )
    return MatrixSource(where, (int(shape[0]), int(shape[1])), var, obs, str(path), None)
