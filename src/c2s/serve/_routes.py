"""The endpoints, grouped by job: the page and the server's description, the verbs on cells
(predict, embed, annotate), the files of earlier annotations, and generation. (No ``from
__future__ import annotations``: FastAPI reads the annotations at run time.)"""

import threading
from pathlib import Path

from fastapi import Depends, Header, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from c2s._errors import C2SError
from c2s._logging import stop_when
from c2s._version import __version__
from c2s.serve import _responses as respond
from c2s.serve._results import FILES, annotated
from c2s.serve._schemas import body_doc, request_models
from c2s.serve._warnings import captured

STATIC = Path(__file__).parent / "static"


def authorize(authorization: str | None = Header(None)) -> None:
    """The header, in the API's documentation; ``Guard`` checked it before the body."""


GUARDED = [Depends(authorize)]


def add_routes(app, server) -> None:
    """Every endpoint of the API on ``app``, sharing ``server``."""
    models = request_models(server.most_genes, server.why_most)
    _page_and_description(app, server)
    _verbs_on_cells(app, server, models)
    _downloads(app, server)
    _generation(app, server, models)


def _page_and_description(app, server) -> None:
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/v1/model", dependencies=GUARDED)
    def model_info() -> dict:
        c = server.model.config
        return {
            "name": server.model.name_or_path or None,
            "tasks": c.tasks,
            "labels": c.labels,
            "n_genes": c.n_genes,
            "organism": c.organism,
            "n_model_genes": len(c.genes or []),
            "max_cells": server.max_cells,
            "version": __version__,
        }


def _verbs_on_cells(app, server, models) -> None:
    """/v1/predict, /v1/embed and /v1/annotate: cells in (JSON or an .h5ad), results out in
    input order."""
    Cells, PredictRequest = models.Cells, models.PredictRequest

    @app.post("/v1/predict", dependencies=GUARDED, openapi_extra=body_doc(PredictRequest))
    async def predict(request: Request) -> dict:
        """Cell types (or the task's labels) with their probabilities, in input order."""
        from c2s.tl import predict as verb

        body, data, index = await server.cells(request, PredictRequest)
        result, caught = await server.run(request, verb, data, index, body, task=body.task)
        out = await run_in_threadpool(respond.predictions, result)
        return {"predictions": out, "cell_ids": list(index), "warnings": caught}

    @app.post("/v1/embed", dependencies=GUARDED, openapi_extra=body_doc(Cells))
    async def embed(request: Request) -> dict:
        """One embedding per cell, in input order."""
        from c2s.tl import embed as verb

        body, data, index = await server.cells(request, Cells)
        result, caught = await server.run(request, verb, data, index, body)
        return {
            "embeddings": respond.embeddings(result),
            "dimensions": result.X.shape[1],
            "cell_ids": list(index),
            "warnings": caught,
        }

    @app.post("/v1/annotate", dependencies=GUARDED, openapi_extra=body_doc(PredictRequest))
    async def annotate(request: Request) -> dict:
        """Predictions, embeddings laid out in 2-D (UMAP) and an annotated .h5ad and CSV to
        download (``downloads``; kept for the last few requests, up to an hour): what the web
        page shows."""
        from c2s.tl import embed as embed_verb
        from c2s.tl import layout_2d
        from c2s.tl import predict as predict_verb

        body, data, index = await server.cells(request, PredictRequest)
        preds, caught = await server.run(request, predict_verb, data, index, body, task=body.task)
        emb, more = await server.run(request, embed_verb, data, index, body)

        def finish() -> dict:  # off the event loop: the layout, the files, the rows
            coords, method = layout_2d(emb.to_numpy())
            rid = server.results.add(*annotated(data, preds, emb, coords))
            return {
                "id": rid,
                "cell_ids": list(index),
                "predictions": respond.predictions(preds),
                "layout": respond.layout(coords, method),
                "downloads": {n.split(".")[-1]: f"/v1/results/{rid}/{n}" for n in FILES},
                "warnings": sorted(set(caught) | set(more)),
            }

        return await run_in_threadpool(finish)


def _downloads(app, server) -> None:
    from fastapi.responses import FileResponse

    @app.get("/v1/results/{rid}/{name}", dependencies=GUARDED)
    def download(rid: str, name: str):
        """A file of an earlier ``/v1/annotate`` result: annotated.h5ad or predictions.csv."""
        path = server.results.path(rid, name)
        if path is None:
            raise HTTPException(
                404,
                "No such result: results are kept for the last few annotations and up to an "
                "hour; annotate the cells again.",
            )
        return FileResponse(path, media_type=FILES[name], filename=f"c2s-{name}")


def _generation(app, server, models) -> None:
    GenerateRequest = models.GenerateRequest

    @app.post("/v1/generate", dependencies=GUARDED)
    async def generate(request: Request, body: GenerateRequest) -> dict:
        """Cells generated for labels: their sentences and expression."""
        from c2s.tl import generate as verb

        _check_count(body, server.max_cells)
        stop = threading.Event()

        def work():
            with stop_when(stop.is_set), captured() as said:
                cells = verb(
                    server.model,
                    body.labels,
                    n_per_label=body.n_per_label,
                    task=body.task,
                    n_genes=body.n_genes,
                    organism=body.organism,
                    temperature=body.temperature,
                    top_p=body.top_p,
                    seed=body.seed,
                    progress_bar=False,
                )
            return cells, sorted(set(said))

        try:
            cells, said = await server.outcome(request, server.generating.submit(work), stop)
        except C2SError as e:
            raise HTTPException(422, str(e)) from e
        return await run_in_threadpool(respond.generated, cells, said)


def _check_count(body, max_cells: int) -> None:
    """The cells a generate request asks for: at least one per label, at most ``max_cells``."""
    counts = body.labels if isinstance(body.labels, dict) else None
    n = sum(counts.values()) if counts else len(body.labels) * body.n_per_label
    if n > max_cells:
        raise HTTPException(
            413, f"{n} cells asked for; this server makes at most {max_cells} per request."
        )
    if n < 1 or (counts and min(counts.values()) < 1):
        raise HTTPException(422, "Ask for at least one cell per label.")
