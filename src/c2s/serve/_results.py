"""Annotation results kept for download: the annotated .h5ad and a CSV per request of
``/v1/annotate``, in a temporary directory the server made for itself. Files are named by the
server, found by an id it drew (never by a name from the request), dropped after
``keep`` newer results or ``ttl`` seconds, and the directory goes when the server stops."""

import atexit
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd

from c2s.io import write_h5ad

FILES = {"annotated.h5ad": "application/x-hdf5", "predictions.csv": "text/csv"}


class Results:
    def __init__(self, keep: int = 8, ttl: float = 3600.0):
        self.keep, self.ttl = keep, ttl
        self.dir: Path | None = None
        self._items: OrderedDict[str, tuple[float, Path]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, adata, table: pd.DataFrame) -> str:
        """Write ``adata`` and ``table`` as a new result; its id."""
        with self._lock:
            if self.dir is None:
                self.dir = Path(tempfile.mkdtemp(prefix="c2s-results-"))
                atexit.register(self.close)
            rid = secrets.token_hex(16)
            path = self.dir / rid
            path.mkdir()
            self._items[rid] = (time.monotonic(), path)
            self._expire()
        write_h5ad(adata, path / "annotated.h5ad")
        table.to_csv(path / "predictions.csv", index_label="cell_id")
        return rid

    def path(self, rid: str, name: str) -> Path | None:
        """The file ``name`` of result ``rid``; None when there is no such (live) result."""
        with self._lock:
            self._expire()
            item = self._items.get(rid)
        if item is None or name not in FILES:
            return None
        return item[1] / name

    def close(self) -> None:
        with self._lock:
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
            self._items.clear()

    def _expire(self) -> None:
        now = time.monotonic()
        while self._items:
            rid, (t, path) = next(iter(self._items.items()))
            if len(self._items) <= self.keep and now - t <= self.ttl:
                break
            del self._items[rid]
            shutil.rmtree(path, ignore_errors=True)


def annotated(data, preds, emb, coords: np.ndarray, key: str = "c2s_prediction"):
    """The request's cells as an AnnData annotated as ``c2s predict`` and ``c2s embed``
    annotate (obs ``c2s_prediction`` and its probability, obsm ``c2s_prediction_probabilities``,
    ``X_c2s``), with the 2-D map in obsm ``X_c2s_umap``, and the table for the CSV.
    ``preds`` and ``emb`` are the verbs' results (:class:`~c2s.tl.PredictionResult`,
    :class:`~c2s.tl.EmbeddingResult`) for the request's cells."""
    import anndata as ad

    from c2s.sentences import CellSentences

    if isinstance(data, CellSentences):
        a = ad.AnnData(obs=pd.DataFrame({"c2s_sentence": data.to_text()}, index=preds.index))
    else:
        a = data.copy()
    for c, values in preds.obs_frame(key).items():
        a.obs[c] = values.to_numpy()
    if preds.probabilities is not None:
        a.obsm[key + "_probabilities"] = preds.probabilities.astype(np.float32)
        a.uns[key] = {"labels": list(preds.candidates)}
    a.obsm["X_c2s"] = emb.to_numpy().astype(np.float32)
    a.obsm["X_c2s_umap"] = coords.astype(np.float32)
    table = preds.to_frame(key)
    table["umap_1"], table["umap_2"] = coords[:, 0], coords[:, 1]
    return a, table
