"""Serving a model over HTTP (FastAPI): a JSON API under ``/v1`` and a web page at ``/``.
``create_app`` for tests and embedding in your own server, ``c2s serve MODEL`` to run it with
uvicorn."""

from c2s.serve._app import DEFAULT_MAX_CELLS, DEFAULT_MAX_UPLOAD_MB, DEFAULT_TIMEOUT_S, create_app
from c2s.serve._batch import DEFAULT_WINDOW_MS
from c2s.serve._h5ad import MEMORY_FACTOR

__all__ = [
    "DEFAULT_MAX_CELLS",
    "DEFAULT_MAX_UPLOAD_MB",
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_WINDOW_MS",
    "MEMORY_FACTOR",
    "create_app",
]
