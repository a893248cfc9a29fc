"""An uploaded .h5ad, checked before anything in it is read: the cells and the bytes its arrays
declare, against the server's limits, and nothing that reaches outside the file.

HDF5 stores arrays in compressed chunks and need not store chunks that were never written, so
a file of a few kilobytes can declare billions of cells or terabytes of zeros: reading it would
allocate all of that. h5py reads only the declarations here (shapes, types, links), and
anndata reads the file once they are within bounds.
"""

import math

from c2s._errors import C2SError

MEMORY_FACTOR = 10  # an upload may take this many times the upload limit in memory
OBJECT_BYTES = 64  # one element of a string or object array, as a Python object
MAX_DEPTH = 32  # groups within groups (anndata reads them recursively)
SPARSE = ("csr_matrix", "csc_matrix")


class TooLarge(C2SError):
    """The upload declares more than this server takes (413)."""


def read_upload(path, *, name: str, max_cells: int, budget: int):
    """The AnnData in ``path`` (the upload named ``name``), once what it declares is within
    ``max_cells`` cells and ``budget`` bytes in memory; refusals name what is over."""
    import anndata as ad

    check(path, name=name, max_cells=max_cells, budget=budget)
    try:
        return ad.read_h5ad(path)
    except MemoryError:
        raise TooLarge(f"{name} is too large to read into this server's memory.") from None
    except Exception as e:  # anndata on a file it cannot make sense of
        raise C2SError(cannot_read(name, e, path)) from None


def check(path, *, name: str, max_cells: int, budget: int) -> None:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise C2SError(cannot_read(name, e, path)) from None
    with f:
        sizes = _sizes(f, name)
        n = _n_obs(f)
        if n > max_cells:
            raise TooLarge(
                f"{n} cells in the upload; this server takes at most {max_cells} per request."
            )
        total = sum(sizes.values())
        if total > budget:
            top = sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
            parts = ", ".join(f"{k} {_gb(v)}" for k, v in top)
            raise TooLarge(
                f"{name} declares {_gb(total)} of arrays ({parts}); this server reads at most "
                f"{_gb(budget)} of an upload ({MEMORY_FACTOR} times its --max-upload-mb). Send "
                "fewer cells or genes per request."
            )
        for key in ("X", "raw/X", *(f"layers/{k}" for k in _keys(f.get("layers")))):
            _check_matrix(f, key, name)


def cannot_read(name: str, error: Exception, path) -> str:
    """One line, naming the upload as the client named it (not the server's path)."""
    text = " ".join(str(error).replace(str(path), name).split())
    return f"Cannot read {name} as an .h5ad file: {text}"


def _sizes(f, name: str) -> dict[str, int]:
    """Bytes in memory of every array, by path; links out of the file, and an object under
    two names (anndata would read it twice, or forever for a group inside itself), refused."""
    import h5py

    seen: dict[int, str] = {}
    sizes: dict[str, int] = {}

    def visit(path, link) -> str | None:  # a message stops the walk (h5py cannot raise here)
        if isinstance(link, h5py.SoftLink | h5py.ExternalLink):
            return (
                f"{name} links {path!r} elsewhere; c2s serve reads only what an .h5ad "
                "holds itself (anndata writes no links)."
            )
        if path.count("/") >= MAX_DEPTH:
            return f"{name} nests groups more than {MAX_DEPTH} deep ({path[:80]!r}...)."
        obj = f[path]
        addr = h5py.h5o.get_info(obj.id).addr
        if addr in seen:
            return (
                f"{name} holds one object under two names ({seen[addr]!r} and {path!r}); "
                "anndata writes each once."
            )
        seen[addr] = path
        if isinstance(obj, h5py.Dataset):
            if obj.is_virtual or obj.external:
                return (
                    f"{name} keeps the data of {path!r} in other files; c2s serve reads "
                    "only what an .h5ad holds itself."
                )
            sizes[path] = _nbytes(obj)
        return None

    refusal = f.visititems_links(visit)
    if refusal is not None:
        raise C2SError(refusal)
    return sizes


def _nbytes(ds) -> int:
    n = math.prod(ds.shape) if ds.shape else (0 if ds.shape is None else 1)
    item = ds.dtype.itemsize
    return n * (max(item, OBJECT_BYTES) if ds.dtype.hasobject else item)


def _n_obs(f) -> int:
    """Cells declared: the length of obs's index and the rows of X (the larger)."""
    import h5py

    counts = []
    obs = f.get("obs")
    if isinstance(obs, h5py.Group):
        key = _text(obs.attrs.get("_index"))
        index = obs.get(key) if key else None
        if isinstance(index, h5py.Dataset) and index.shape:
            counts.append(index.shape[0])
    elif isinstance(obs, h5py.Dataset) and obs.shape:  # the layout of anndata before 0.7
        counts.append(obs.shape[0])
    shape = _shape(f.get("X"))
    if shape:
        counts.append(shape[0])
    return int(max(counts, default=0))


def _check_matrix(f, key: str, name: str) -> None:
    """A dense array of numbers, or a sparse matrix whose parts agree with its shape."""
    import h5py

    x = f.get(key)
    if x is None:
        return
    where = f"{name}'s {key}"
    if isinstance(x, h5py.Dataset):
        if x.ndim != 2:
            raise C2SError(f"{where} has {x.ndim} dimensions; a matrix (cells x genes) has 2.")
        _numbers(x, where)
        return
    kind = _text(x.attrs.get("encoding-type")) or _text(x.attrs.get("h5sparse_format"))
    kind = {"csr": "csr_matrix", "csc": "csc_matrix"}.get(kind, kind)
    if kind not in SPARSE:
        raise C2SError(f"{where} is stored as {kind or 'an unknown group'}, not a matrix.")
    parts = {p: x.get(p) for p in ("data", "indices", "indptr")}
    if not all(isinstance(p, h5py.Dataset) and p.ndim == 1 for p in parts.values()):
        raise C2SError(f"{where} lacks its data, indices or indptr array; the file is damaged.")
    shape = _shape(x)
    if shape is None:
        raise C2SError(f"{where} states no shape; the file is damaged.")
    major = shape[0] if kind == "csr_matrix" else shape[1]
    if len(parts["indptr"]) != major + 1 or len(parts["data"]) != len(parts["indices"]):
        raise C2SError(
            f"{where} says it is {shape[0]} x {shape[1]}, but its parts disagree (index pointer "
            f"of {len(parts['indptr'])} for {major + 1}; {len(parts['data'])} values for "
            f"{len(parts['indices'])} indices); the file is damaged."
        )
    _numbers(parts["data"], where)


def _numbers(ds, where: str) -> None:
    if ds.dtype.kind not in "biuf":
        raise C2SError(f"{where} holds values of type {ds.dtype}; expression is numbers.")


def _shape(x) -> tuple[int, ...] | None:
    import h5py

    if isinstance(x, h5py.Dataset):
        return x.shape
    if isinstance(x, h5py.Group):
        shape = x.attrs.get("shape", x.attrs.get("h5sparse_shape"))
        try:
            out = tuple(int(v) for v in shape)
        except (TypeError, ValueError):
            return None
        return out if len(out) == 2 and min(out) >= 0 else None
    return None


def _keys(group) -> list[str]:
    import h5py

    return list(group.keys()) if isinstance(group, h5py.Group) else []


def _text(v) -> str | None:
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    return v if isinstance(v, str) else None


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"
