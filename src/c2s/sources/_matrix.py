"""Row-block access to an expression matrix: in-memory AnnData or an .h5ad file on disk.

Files are read with h5py directly, one block of CSR rows at a time, so a file larger than
memory streams in bounded memory and each worker process can open it on its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from c2s._anndata import is_anndata
from c2s._errors import C2SError
from c2s._warn import warn_user
from c2s.sources._genes import check_gene_names, names_from_var


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
    """Rows of one expression matrix (X, a layer, or raw.X) with its gene names and obs.

    Every kind of source (this one, :class:`~c2s.sources.SomaSource`,
    :class:`~c2s.sources.MultiSource`) answers the same questions: ``shape`` and
    ``n_obs``, ``obs``, :meth:`gene_names`, row blocks (:meth:`read_rows`,
    :meth:`read_rows_raw`, :meth:`iter_rows`), ``label``, :meth:`provenance`.
    """

    where: str
    shape: tuple[int, int]
    var: pd.DataFrame
    obs: pd.DataFrame
    path: str | None = None  # set for files: workers reopen it
    _matrix: object = None  # in-memory matrix (CSR or dense)
    var_names: str | None = None  # the var column gene names come from (None: the index)
    # the input's other matrices, for the message that refuses scaled values
    other_matrices: list = field(default_factory=list, repr=False)

    @property
    def n_obs(self) -> int:
        return self.shape[0]

    @property
    def label(self) -> str:
        return _describe(self.where)

    @property
    def reopenable(self) -> bool:
        """Workers in other processes or machines can open it again themselves."""
        return self.path is not None

    @property
    def in_memory(self) -> bool:
        """The rows are resident in this process already."""
        return self.path is None

    @property
    def always_carried(self) -> tuple[str, ...]:
        """obs columns a dataset of this source carries whatever columns were chosen."""
        return ()

    def gene_names(self, *, where: str | None = None) -> np.ndarray:
        """The genes' names, checked (:func:`~c2s.sources.check_gene_names`): var's index,
        or its column ``var_names``. ``where`` names them in messages (default: the
        matrix); warnings point at the user's call."""
        where = f"the gene names of {self.label}" if where is None else where
        names = names_from_var(self.var, self.var_names)
        return check_gene_names(names, where=where)

    def provenance(self) -> dict:
        """Where the cells came from, for a dataset's metadata (``source``)."""
        return {
            "file": self.path and os.path.basename(self.path),
            "matrix": self.label,
            "var_names": self.var_names,
        }

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
            matrix = self._matrix
            if sp.issparse(matrix):
                a, b = int(matrix.indptr[start]), int(matrix.indptr[stop])
                return matrix.indptr[start : stop + 1], matrix.indices[a:b], matrix.data[a:b]
            block = sp.csr_matrix(_widen(np.asarray(matrix[start:stop])))
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
        block = sp.csr_matrix(_widen(node[start:stop]))
        return block.indptr, block.indices, block.data
    enc = node.attrs.get("encoding-type", "")
    if enc == "csr_matrix" or node.attrs.get("h5sparse_format", "") == "csr":
        indptr = node["indptr"][start : stop + 1]
        a, b = int(indptr[0]), int(indptr[-1])
        return indptr - a, node["indices"][a:b], _widen(node["data"][a:b])
    if enc == "csc_matrix":
        # Column-major storage cannot be read by rows without reading everything.
        from anndata.io import read_elem

        block = sp.csr_matrix(read_elem(node)[start:stop])
        return block.indptr, block.indices, block.data
    raise C2SError(f"Unsupported matrix encoding {enc!r} at {where!r} in {f.filename}.")


def open_matrix(
    data, *, layer: str | None = None, use_raw: bool = False, var_names: str | None = None
) -> MatrixSource:
    """A :class:`MatrixSource` over an AnnData object, a backed AnnData, or an .h5ad path;
    gene names from var's index, or its column ``var_names``."""
    where = _where(layer, use_raw)
    if isinstance(data, str | os.PathLike):
        return _open_file(Path(data), where, var_names)
    if not is_anndata(data):
        raise C2SError(f"Expected an AnnData object or an .h5ad path, got {type(data).__name__}.")
    if data.isbacked:
        return _open_file(Path(data.filename), where, var_names)
    matrix, var = _in_memory_matrix(data, where)
    others = ["adata.raw (--raw)"] if data.raw is not None and where != "raw" else []
    others += [f"layer {k!r} (--layer {k})" for k in data.layers if f"layers/{k}" != where]
    return MatrixSource(where, tuple(matrix.shape), var, data.obs, None, matrix, var_names, others)


def _in_memory_matrix(data, where: str):
    """The matrix at ``where`` of an in-memory AnnData (CSR or a dense array), and its var."""
    if where == "raw":
        if data.raw is None:
            raise C2SError("adata.raw is empty; choose adata.X (default) or a layer.")
        matrix, var = data.raw.X, data.raw.var
    elif where == "X":
        matrix, var = data.X, data.var
    else:
        name = where.split("/", 1)[1]
        if name not in data.layers:
            raise C2SError(f"No layer {name!r} in adata.layers; available: {list(data.layers)}.")
        matrix, var = data.layers[name], data.var
    if matrix is None:
        raise C2SError(f"{_describe(where)} is empty.")
    if sp.issparse(matrix) and matrix.format != "csr":
        matrix = matrix.tocsr()  # row slicing of CSC is O(nnz) per slice: convert once
    elif not sp.issparse(matrix):
        matrix = np.asarray(matrix)
    return matrix, var


def _open_file(path: Path, where: str, var_names: str | None) -> MatrixSource:
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
        others = ["adata.raw (--raw)"] if "raw" in f and where != "raw" else []
        others += [
            f"layer {k!r} (--layer {k})" for k in f.get("layers", {}) if f"layers/{k}" != where
        ]
    if enc == "csc_matrix":
        warn_user(
            f"{_describe(where)} in {path.name} is stored column-wise (CSC): reading it by "
            "rows loads the whole matrix for every chunk. Save it as CSR for streaming "
            "(adata.X = adata.X.tocsr(); adata.write_h5ad(...)).",
        )
    shape = (int(shape[0]), int(shape[1]))
    return MatrixSource(where, shape, var, obs, str(path), None, var_names, others)
