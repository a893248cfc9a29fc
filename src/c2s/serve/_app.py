"""The HTTP API: one model loaded once, the ``c2s.tl`` verbs behind JSON endpoints.
(No ``from __future__ import annotations`` in the modules that define endpoints: FastAPI
reads the request models, made per application, from the annotations at run time.)

Cells come as cell sentences (``"GENE GENE ..."``, highest first) or as expression records
(``{"GENE": value}``, log-normalized like the training data); results come back in input
order. Errors are 4xx with the message the CLI would print; the server stays up.

This module builds the application: the model and the server's state (:class:`Server`), the
guard and the error handler; :mod:`c2s.serve._routes` adds the endpoints.
"""

import asyncio
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

from c2s._errors import C2SError
from c2s._version import __version__
from c2s.serve._batch import DEFAULT_WINDOW_MS, Batcher
from c2s.serve._results import Results
from c2s.serve._warnings import captured

DEFAULT_MAX_CELLS = 10_000
DEFAULT_MAX_UPLOAD_MB = 200
DEFAULT_TIMEOUT_S = 300
MAX_GENES = 100_000  # genes per sentence, for a model that states no context: past any cell's
POLL_S = 0.1  # how often a waiting request looks whether its client is still there


def create_app(
    model,
    *,
    token: str | None = None,
    max_cells: int = DEFAULT_MAX_CELLS,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    timeout: float = DEFAULT_TIMEOUT_S,
    batch_window_ms: float = DEFAULT_WINDOW_MS,
    device: str = "auto",
):
    """A FastAPI application serving ``model`` (a :class:`~c2s.model.C2SModel`, a
    directory or a hub id; loaded once, without remote code): the JSON API under ``/v1`` and
    a web page at ``/``. With ``token``, every ``/v1`` request needs ``Authorization: Bearer
    TOKEN`` (checked before anything of the request is read). A request holds at most
    ``max_cells`` cells, its body (JSON or an uploaded .h5ad) at most ``max_upload_mb``
    megabytes, and gets 504 after ``timeout`` seconds; work nobody waits for any more (timed
    out, or the client went away) stops at its next model batch. Concurrent predict and embed
    requests are batched: requests that arrive while the model is busy, or within
    ``batch_window_ms`` of the first, share the model's batches."""
    try:
        import fastapi  # noqa: F401
        import pydantic  # noqa: F401
        import starlette  # noqa: F401
    except ImportError as e:
        raise ImportError("The server needs FastAPI: pip install 'c2s[serve]'") from e
    from c2s.model import as_model
    from c2s.serve._routes import add_routes

    _check_limits(max_cells, max_upload_mb, timeout, batch_window_ms)
    server = Server(as_model(model, device=device), max_cells, max_upload_mb, batch_window_ms)
    app = _application(server, token, timeout)
    add_routes(app, server)
    app.state.model, app.state.batcher, app.state.results = (
        server.model,
        server.batcher,
        server.results,
    )
    return app


class Server:
    """What the endpoints share: the model, its batcher (predict, embed), the thread that
    generates (one request at a time), the results kept for download and the limits."""

    def __init__(self, model, max_cells: int, max_upload_mb: float, batch_window_ms: float):
        self.model = model
        self.max_cells = max_cells
        self.max_body = int(max_upload_mb * 1e6)
        self.generating = ThreadPoolExecutor(1, thread_name_prefix="c2s-generate")
        self.batcher = Batcher(model, max_cells=max_cells, window=batch_window_ms / 1000)
        self.results = Results()  # annotated files kept for download
        self.most_genes, self.why_most = _gene_limit(model)

    async def outcome(self, request, future, stop: threading.Event | None = None):
        """The result of ``future`` (work in a model thread). A request cancelled at its
        deadline, or whose client went away, abandons the work: the future is cancelled and
        ``stop`` set, so the model thread drops it at its next batch."""
        from fastapi import HTTPException

        waiting = asyncio.wrap_future(future)
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=POLL_S)
                if done:
                    return waiting.result()
                if await request.is_disconnected():
                    raise HTTPException(499, "The client went away; its request was dropped.")
        finally:
            if not waiting.done():
                waiting.cancel()  # and the future it waits for
                if stop is not None:
                    stop.set()

    async def cells(self, request, cls):
        """``(options, data, index)`` of a request that sends cells (JSON or an upload)."""
        from fastapi import HTTPException

        from c2s.serve._upload import parse

        return await parse(
            request,
            cls,
            max_cells=self.max_cells,
            max_upload_bytes=self.max_body,
            HTTPException=HTTPException,
        )

    async def run(self, request, fn, data, index, body, **kw):
        """The verb on the request's cells, in input order, batched with concurrent
        requests that ask the same; ``(result, warnings)``; c2s's refusals as 422."""
        from fastapi import HTTPException
        from starlette.concurrency import run_in_threadpool

        k = body.n_genes or self.model.config.n_genes
        options = {"n_genes": k, "organism": body.organism, **kw}

        def ticket():  # in a worker thread: ranking an upload takes a while
            with captured() as said:
                cells = request_sentences(data, body, k)
            return self.batcher.ticket(fn, options, cells, index, said)

        try:
            return await self.outcome(request, self.batcher.put(await run_in_threadpool(ticket)))
        except C2SError as e:
            raise HTTPException(422, str(e)) from e


def _application(server: Server, token, timeout):
    """The FastAPI application: its description, the guard of ``/v1`` (token, body size,
    deadline), 422 for a body that does not validate, and the download store closed when the
    application stops."""
    from fastapi import FastAPI
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    from c2s.serve._guard import Guard
    from c2s.serve._schemas import validation_detail

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        server.results.close()

    app = FastAPI(
        title="c2s",
        version=__version__,
        lifespan=lifespan,
        description="Cell sentences with a language model: cell types, embeddings, generated "
        "cells. The same verbs as the c2s command line; a web page at /.",
    )
    app.add_middleware(Guard, token=token, max_body=server.max_body, timeout=timeout)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        detail = validation_detail(exc.errors())
        return JSONResponse(status_code=422, content={"detail": jsonable_encoder(detail)})

    return app


def _check_limits(max_cells, max_upload_mb, timeout, batch_window_ms) -> None:
    """Refuse limits that could never work, before the model is loaded."""
    if not max_cells >= 1:
        raise C2SError(f"max_cells (--max-cells) must be at least 1, not {max_cells}.")
    for name, value in (("max_upload_mb", max_upload_mb), ("timeout", timeout)):
        if not value > 0:
            flag = "--" + name.replace("_", "-")
            raise C2SError(f"{name} ({flag}) must be more than 0, not {value}.")
    if not batch_window_ms >= 0:
        raise C2SError(
            f"batch_window_ms (--batch-window-ms) must be 0 or more, not {batch_window_ms}."
        )


def request_sentences(data, body, n_genes):
    """The request's cells as sentences of ``n_genes`` genes (integer gene ids), ranked as
    the verb ranks them alone (seed 0); an AnnData's expression, layer and gene names as
    asked."""
    from c2s.sentences import CellSentences, from_anndata

    if isinstance(data, CellSentences):
        if body.use_raw or body.layer is not None or body.var_names is not None:
            raise C2SError("use_raw, layer and var_names apply to uploaded .h5ad files.")
        return data if n_genes is None else data.top_genes(n_genes)
    return from_anndata(
        data,
        layer=body.layer,
        use_raw=body.use_raw,
        var_names=body.var_names,
        n_genes=n_genes,
        seed=0,
    )


def _gene_limit(m) -> tuple[int, str]:
    """The most genes per sentence a request may ask for, and why: a prompt holds a token per
    gene at least, so no more than the model's context."""
    context = getattr(getattr(m.model, "config", None), "max_position_embeddings", None)
    if context:
        return int(context), f"this model's prompts hold at most {context} tokens"
    if m.config.genes:
        return len(m.config.genes), "the genes this model knows"
    return MAX_GENES, "more than any cell expresses"
