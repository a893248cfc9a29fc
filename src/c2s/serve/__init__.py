"""Serving a model over HTTP (FastAPI): ``create_app`` for tests and embedding in your own
server, ``c2s serve MODEL`` to run it with uvicorn."""

from c2s.serve._app import DEFAULT_MAX_CELLS, DEFAULT_MAX_UPLOAD_MB, create_app

__all__ = ["DEFAULT_MAX_CELLS", "DEFAULT_MAX_UPLOAD_MB", "create_app"]
