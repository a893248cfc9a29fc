"""The HTTP API: one model loaded once, the ``c2s.tl`` verbs behind JSON endpoints.
(No ``from __future__ import annotations`` here: FastAPI reads the request models, defined
inside ``create_app``, from the annotations at run time.)

Cells come as cell sentences (``"GENE GENE ..."``, highest first) or as expression records
(``{"GENE": value}``, log-normalized like the training data); results come back in input
order. Errors are 4xx with the message the CLI would print; the server stays up.
"""

import asyncio
import contextlib
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

from c2s._errors import C2SError
from c2s._logging import stop_when
from c2s._version import __version__
from c2s.serve._batch import DEFAULT_WINDOW_MS, Batcher
from c2s.serve._results import FILES, Results, annotated, layout
from c2s.serve._upload import parse
from c2s.serve._warnings import captured

DEFAULT_MAX_CELLS = 10_000
DEFAULT_MAX_UPLOAD_MB = 200
DEFAULT_TIMEOUT_S = 300
MAX_GENES = 100_000  # genes per sentence, for a model that states no context: past any cell's
POLL_S = 0.1  # how often a waiting request looks whether its client is still there
STATIC = Path(__file__).parent / "static"


def create_app(model, *, token: str | None = None, max_cells: int = DEFAULT_MAX_CELLS,
               max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
               timeout: float = DEFAULT_TIMEOUT_S, batch_window_ms: float = DEFAULT_WINDOW_MS,
               device: str = "auto"):  # fmt: skip
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
        from fastapi import Depends, FastAPI, Header, HTTPException, Request
        from fastapi.encoders import jsonable_encoder
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import FileResponse, JSONResponse
        from fastapi.staticfiles import StaticFiles
        from pydantic import BaseModel, BeforeValidator, Field
        from starlette.concurrency import run_in_threadpool
    except ImportError as e:
        raise ImportError("The server needs FastAPI: pip install 'c2s[serve]'") from e
    from c2s.model import C2SModel
    from c2s.serve._guard import Guard

    _check_limits(max_cells, max_upload_mb, timeout, batch_window_ms)
    m = model if isinstance(model, C2SModel) else C2SModel.from_pretrained(model, device=device)
    generating = ThreadPoolExecutor(1, thread_name_prefix="c2s-generate")  # one at a time
    batcher = Batcher(m, max_cells=max_cells, window=batch_window_ms / 1000)  # predict, embed
    results = Results()  # annotated files kept for download
    max_body = int(max_upload_mb * 1e6)
    most, why = _gene_limit(m)

    def n_genes_in_range(v):
        """The range, said in words before pydantic parses the number: a huge one would
        overflow later (1e30, or 10**30 as an integer), and 'inf' or 'nan' is no count."""
        if v is None or isinstance(v, bool):
            return v
        try:
            x = float(v)
        except (TypeError, ValueError):
            return v  # pydantic says it is not a whole number
        except OverflowError:
            x = math.inf
        if not 1 <= x <= most:
            raise ValueError(f"n_genes must be a whole number from 1 to {most} ({why}), not {x:g}")
        return v

    NGenes = Annotated[int | None, BeforeValidator(n_genes_in_range)]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        results.close()

    app = FastAPI(
        title="c2s", version=__version__, lifespan=lifespan,
        description="Cell sentences with a language model: cell types, embeddings, generated "
        "cells. The same verbs as the c2s command line; a web page at /.",
    )  # fmt: skip
    app.add_middleware(Guard, token=token, max_body=max_body, timeout=timeout)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        # without the input each error quotes (it can be huge, or a NaN JSON cannot hold),
        # and a validator's exception as its message
        detail = [{k: ({n: str(v) if isinstance(v, Exception) else v for n, v in e[k].items()}
                       if k == "ctx" else e[k]) for k in e if k != "input"} for e in exc.errors()]  # fmt: skip
        return JSONResponse(status_code=422, content={"detail": jsonable_encoder(detail)})

    class Cells(BaseModel):
        sentences: list[str] | None = Field(None, description="cell sentences, genes highest first")
        cells: list[dict[str, float]] | None = Field(None, description="gene -> expression")
        n_genes: NGenes = Field(None, ge=1, le=most,
                                description="genes per sentence (default: the model's)")  # fmt: skip
        organism: str | None = None
        use_raw: bool = Field(False, description=".h5ad upload: rank adata.raw.X")
        layer: str | None = Field(None, description=".h5ad upload: rank this layer")
        var_names: str | None = Field(None, description=".h5ad upload: var column of symbols")

    class PredictRequest(Cells):
        task: str = "cell_type_prediction"

    class GenerateRequest(BaseModel):
        labels: dict[str, int] | list[str] = Field(
            ..., description="{label: number of cells} or labels (n_per_label cells each)"
        )
        n_per_label: int = Field(1, ge=1)
        task: str = "cell_type_generation"
        n_genes: NGenes = Field(None, ge=1, le=most)
        organism: str | None = None
        temperature: float = Field(0.7, gt=0, allow_inf_nan=False)
        top_p: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
        seed: int = Field(0, ge=0)

    def authorize(authorization: str | None = Header(None)) -> None:
        """The header, in the API's documentation; ``Guard`` checked it before the body."""

    async def outcome(request, future, stop: threading.Event | None = None):
        """The result of ``future`` (work in a model thread). A request cancelled at its
        deadline, or whose client went away, abandons the work: the future is cancelled and
        ``stop`` set, so the model thread drops it at its next batch."""
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

    async def run(request, fn, data, index, body, **kw):
        """The verb on the request's cells, in input order, batched with concurrent
        requests that ask the same; c2s's refusals as 422."""
        k = body.n_genes or m.config.n_genes

        def ticket():  # in a worker thread: ranking an upload takes a while
            with captured() as said:
                texts = _sentences(data, body, k)
            return batcher.ticket(fn, {"n_genes": k, "organism": body.organism, **kw}, texts,
                                  index, said)  # fmt: skip

        try:
            return await outcome(request, batcher.put(await run_in_threadpool(ticket)))
        except C2SError as e:
            raise HTTPException(422, str(e)) from e

    async def cells(request, cls):
        return await parse(request, cls, max_cells=max_cells, max_upload_bytes=max_body,
                           HTTPException=HTTPException)  # fmt: skip

    def predictions(frame) -> list[dict]:
        probs = [c for c in frame.columns if c.startswith("p_")]
        names, P = [c[2:] for c in probs], frame[probs].to_numpy(dtype=float)
        none = [None] * len(frame)
        labels = frame["c2s_prediction"].tolist() if "c2s_prediction" in frame else none
        top = frame.get("c2s_prediction_probability")
        top = none if top is None else top.tolist()
        return [{
            "label": None if _missing(label) else str(label),
            "probability": None if _missing(p) else float(p),
            "probabilities": {n: float(v) for n, v in zip(names, row, strict=True)
                              if not math.isnan(v)},
        } for label, p, row in zip(labels, top, P, strict=True)]  # fmt: skip

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/v1/model", dependencies=[Depends(authorize)])
    def model_info() -> dict:
        c = m.config
        return {"name": m.name_or_path or None, "tasks": c.tasks, "labels": c.labels,
                "n_genes": c.n_genes, "organism": c.organism,
                "n_model_genes": len(c.genes or []), "max_cells": max_cells,
                "version": __version__}  # fmt: skip

    @app.post("/v1/predict", dependencies=[Depends(authorize)],
              openapi_extra=_body_doc(PredictRequest))  # fmt: skip
    async def predict(request: Request) -> dict:
        """Cell types (or the task's labels) with their probabilities, in input order."""
        from c2s.tl import predict as verb

        body, data, index = await cells(request, PredictRequest)
        frame, caught = await run(request, verb, data, index, body, task=body.task)
        out = await run_in_threadpool(predictions, frame)
        return {"predictions": out, "cell_ids": list(index), "warnings": caught}

    @app.post("/v1/embed", dependencies=[Depends(authorize)], openapi_extra=_body_doc(Cells))
    async def embed(request: Request) -> dict:
        """One embedding per cell, in input order."""
        from c2s.tl import embed as verb

        body, data, index = await cells(request, Cells)
        frame, caught = await run(request, verb, data, index, body)
        vectors = [
            None if row.isna().any() else [float(v) for v in row] for _, row in frame.iterrows()
        ]
        return {"embeddings": vectors, "dimensions": frame.shape[1], "cell_ids": list(index),
                "warnings": caught}  # fmt: skip

    @app.post("/v1/annotate", dependencies=[Depends(authorize)],
              openapi_extra=_body_doc(PredictRequest))  # fmt: skip
    async def annotate(request: Request) -> dict:
        """Predictions, embeddings laid out in 2-D (UMAP) and an annotated .h5ad and CSV to
        download (``downloads``; kept for the last few requests, up to an hour): what the web
        page shows."""
        from c2s.tl import embed as embed_verb
        from c2s.tl import predict as predict_verb

        body, data, index = await cells(request, PredictRequest)
        preds, caught = await run(request, predict_verb, data, index, body, task=body.task)
        emb, more = await run(request, embed_verb, data, index, body)

        def finish() -> dict:  # off the event loop: the layout, the files, the rows
            coords, method = layout(emb.to_numpy())
            rid = results.add(*annotated(data, preds, emb, coords))
            return {
                "id": rid, "cell_ids": list(index), "predictions": predictions(preds),
                "layout": {"method": method, "coords": [
                    None if math.isnan(x) else [float(x), float(y)] for x, y in coords]},
                "downloads": {n.split(".")[-1]: f"/v1/results/{rid}/{n}" for n in FILES},
                "warnings": sorted(set(caught) | set(more)),
            }  # fmt: skip

        return await run_in_threadpool(finish)

    @app.get("/v1/results/{rid}/{name}", dependencies=[Depends(authorize)])
    def download(rid: str, name: str):
        """A file of an earlier ``/v1/annotate`` result: annotated.h5ad or predictions.csv."""
        path = results.path(rid, name)
        if path is None:
            raise HTTPException(404, "No such result: results are kept for the last few "
                                "annotations and up to an hour; annotate the cells again.")  # fmt: skip
        return FileResponse(path, media_type=FILES[name], filename=f"c2s-{name}")

    @app.post("/v1/generate", dependencies=[Depends(authorize)])
    async def generate(request: Request, body: GenerateRequest) -> dict:
        """Cells generated for labels: their sentences and expression."""
        from c2s.tl import generate as verb

        counts = body.labels if isinstance(body.labels, dict) else None
        n = sum(counts.values()) if counts else len(body.labels) * body.n_per_label
        if n > max_cells:
            raise HTTPException(413, f"{n} cells asked for; this server makes at most "
                                f"{max_cells} per request.")  # fmt: skip
        if n < 1 or (counts and min(counts.values()) < 1):
            raise HTTPException(422, "Ask for at least one cell per label.")
        stop = threading.Event()

        def work():
            with stop_when(stop.is_set), captured() as said:
                a = verb(m, body.labels, n_per_label=body.n_per_label, task=body.task,
                         n_genes=body.n_genes, organism=body.organism,
                         temperature=body.temperature, top_p=body.top_p, seed=body.seed,
                         progress_bar=False)  # fmt: skip
            return a, sorted(set(said))

        try:
            a, said = await outcome(request, generating.submit(work), stop)
        except C2SError as e:
            raise HTTPException(422, str(e)) from e
        return await run_in_threadpool(_generated, a, said)

    app.state.model, app.state.batcher, app.state.results = m, batcher, results
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
        raise C2SError(f"batch_window_ms (--batch-window-ms) must be 0 or more, not "
                       f"{batch_window_ms}.")  # fmt: skip


def _sentences(data, body, n_genes) -> list[str]:
    """The request's cells as cell sentences of ``n_genes`` genes, ranked as the verb ranks
    them alone (seed 0); an AnnData's expression, layer and gene names as asked."""
    from c2s.sentences import CellSentences, from_anndata

    if isinstance(data, CellSentences):
        if body.use_raw or body.layer is not None or body.var_names is not None:
            raise C2SError("use_raw, layer and var_names apply to uploaded .h5ad files.")
        return data.to_text(n_genes)
    cs = from_anndata(data, layer=body.layer, use_raw=body.use_raw, var_names=body.var_names,
                      top_k=n_genes, seed=0)  # fmt: skip
    return cs.to_text()


def _generated(a, said: list[str]) -> dict:
    """The response of /v1/generate: each cell's label, sentence and expression."""
    label_col = next(c for c in a.obs.columns if not c.startswith("c2s_"))
    X = a.X.tocsr() if hasattr(a.X, "tocsr") else None
    genes = a.var_names.astype(str)
    cells = []
    for i in range(a.n_obs):
        cell = {
            "label": str(a.obs[label_col].iat[i]),
            "sentence": str(a.obs["c2s_sentence"].iat[i]),
        }
        if X is not None:
            row = X[i]
            cell["expression"] = {
                genes[j]: float(v) for j, v in zip(row.indices, row.data, strict=True)
            }
        cells.append(cell)
    return {"cells": cells, "warnings": said}


def _gene_limit(m) -> tuple[int, str]:
    """The most genes per sentence a request may ask for, and why: a prompt holds a token per
    gene at least, so no more than the model's context."""
    context = getattr(getattr(m.model, "config", None), "max_position_embeddings", None)
    if context:
        return int(context), f"this model's prompts hold at most {context} tokens"
    if m.config.genes:
        return len(m.config.genes), "the genes this model knows"
    return MAX_GENES, "more than any cell expresses"


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _body_doc(cls) -> dict:
    """The OpenAPI request body of an endpoint that reads JSON or an uploaded .h5ad."""
    form = {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary", "description": "an .h5ad file"},
        **{k: v for k, v in cls.model_json_schema()["properties"].items()
           if k not in ("sentences", "cells")},
    }, "required": ["file"]}  # fmt: skip
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": cls.model_json_schema()},
        "multipart/form-data": {"schema": form},
    }}}  # fmt: skip
