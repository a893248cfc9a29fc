"""Writing .h5ad files that fail cleanly when the disk is full or a file size limit is
reached (HDF5 does not recover from a failed write)."""

from __future__ import annotations

import errno
import io
import os


def write_h5ad(adata, path: str | os.PathLike) -> None:
    """``adata.write_h5ad(path)`` that fails cleanly when the disk is full (or a file size
    limit is reached). HDF5 does not recover from a failed write: every object still open
    prints a traceback and the process may crash at exit. So HDF5 writes through a file that
    never fails: what the disk refuses is kept in memory, and the error is raised before
    the next element (nothing more reaches the disk)."""
    import h5py
    from anndata.experimental import write_dispatched

    adata.strings_to_categoricals()  # what AnnData.write_h5ad does first
    if adata.raw is not None:
        adata.strings_to_categoricals(adata.raw.var)
    parts = {
        "X": adata.X,
        "raw": adata.raw,
        "obs": adata.obs,
        "var": adata.var,
        "obsm": dict(adata.obsm),
        "varm": dict(adata.varm),
        "obsp": dict(adata.obsp),
        "varp": dict(adata.varp),
        "layers": dict(adata.layers),
        "uns": dict(adata.uns),
    }
    with open(path, "w+b", buffering=0) as raw:
        sink = _NeverFails(raw)

        def write(func, store, key, elem, *, iospec, dataset_kwargs):
            sink.check()
            func(store, key, elem, dataset_kwargs=dataset_kwargs)

        try:
            with h5py.File(sink, "w") as f:
                f.attrs["encoding-type"] = "anndata"
                f.attrs["encoding-version"] = "0.1.0"
                for key, elem in parts.items():
                    if elem is not None:
                        write_dispatched(f, key, elem, callback=write)
        except Exception:
            sink.check()
            raise
        sink.check()


class _NeverFails(io.RawIOBase):
    """A file for h5py whose writes always succeed: one the disk refuses is kept in memory
    (reads see it) and its error raised by :meth:`check`."""

    def __init__(self, f):
        self.f, self.pos, self.error, self.kept = f, 0, None, []

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self._size()}[whence]
        self.pos = base + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def _size(self) -> int:
        return max([os.fstat(self.f.fileno()).st_size, *(at + len(b) for at, b in self.kept)])

    def readinto(self, buf) -> int:
        view = memoryview(buf).cast("B")
        self.f.seek(self.pos)
        n = self.f.readinto(view) or 0
        end = self.pos + len(view)
        for at, b in self.kept:
            lo, hi = max(at, self.pos), min(at + len(b), end)
            if lo < hi:
                if hi - self.pos > n:  # past what the disk holds: zeros, then what was kept
                    view[n : hi - self.pos] = bytes(hi - self.pos - n)
                    n = hi - self.pos
                view[lo - self.pos : hi - self.pos] = b[lo - at : hi - at]
        self.pos += n
        return n

    def write(self, data) -> int:
        data, at, done = bytes(data), self.pos, 0
        if self.error is None:
            self.f.seek(at)
        while self.error is None and done < len(data):
            try:
                n = self.f.write(data[done:])
            except OSError as e:
                self.error = e
                break
            if not n:
                self.error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            done += n or 0
        if done < len(data):
            self.kept.append((at + done, data[done:]))
        self.pos = at + len(data)
        return len(data)

    def truncate(self, size: int | None = None) -> int:
        size = self.pos if size is None else size
        if self.error is None:
            try:
                self.f.truncate(size)
            except OSError as e:
                self.error = e
        return size

    def flush(self) -> None:
        pass
