"""Reading a request's cells: JSON (sentences or expression records) or an uploaded .h5ad
(multipart form data, field ``file``). An upload is streamed into a temporary directory of
its own, checked (``_h5ad``), read, and deleted with it; nothing from the request names a
path. Bodies are no larger than the server's limit (``_guard`` stops reading past it)."""

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from c2s._errors import C2SError
from c2s.serve._h5ad import MEMORY_FACTOR, TooLarge, read_upload

CHUNK = 1 << 20


async def parse(request, cls, *, max_cells: int, max_upload_bytes: int, HTTPException):
    """``(options, data, index)``: the request's options as ``cls``, its cells (ranked
    sentences or an AnnData) and their ids in input order."""
    from starlette.concurrency import run_in_threadpool

    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        return await _upload(request, cls, max_cells, max_upload_bytes, HTTPException)
    raw = await request.body()
    # off the event loop: a body of many cells takes a while to decode and check
    return await run_in_threadpool(_json, raw, cls, max_cells, HTTPException)


def _json(raw: bytes, cls, max_cells: int, HTTPException):
    import json

    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError

    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        raise HTTPException(
            422,
            'The body is not JSON: send {"sentences": [...]} or '
            '{"cells": [...]}, or an .h5ad as multipart form data (field '
            "'file').",
        ) from None
    try:
        body = cls.model_validate(payload)
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from None
    data, index = cells_of(body, max_cells, HTTPException)
    return body, data, index


async def _upload(request, cls, max_cells, max_upload_bytes, HTTPException):
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError
    from starlette.concurrency import run_in_threadpool

    form = await request.form(max_files=1, max_fields=20)
    file = form.get("file")
    if file is None or isinstance(file, str):
        raise HTTPException(422, "Send the .h5ad file as the form field 'file'.")
    try:
        body = cls.model_validate({k: v for k, v in form.items() if k != "file"})
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from None
    name = file.filename or "the upload"
    with tempfile.TemporaryDirectory(prefix="c2s-upload-") as tmp:
        path = Path(tmp) / "upload.h5ad"
        with open(path, "wb") as f:
            while chunk := await file.read(CHUNK):
                f.write(chunk)
        try:  # off the event loop: h5py and anndata block while they read
            adata = await run_in_threadpool(
                read_upload,
                path,
                name=name,
                max_cells=max_cells,
                budget=MEMORY_FACTOR * max_upload_bytes,
            )
        except TooLarge as e:
            raise HTTPException(413, str(e)) from None
        except C2SError as e:
            raise HTTPException(422, str(e)) from None
    if adata.n_obs == 0:
        raise HTTPException(422, "The uploaded file has no cells.")
    if adata.n_obs > max_cells:
        raise HTTPException(
            413,
            f"{adata.n_obs} cells in the upload; this server takes at "
            f"most {max_cells} per request.",
        )
    return body, adata, adata.obs_names.astype(str)


def cells_of(body, max_cells: int, HTTPException):
    """The JSON request's cells as ranked sentences or an AnnData, indexed "0".."n-1"."""
    import anndata as ad
    import scipy.sparse as sp

    from c2s.sentences import CellSentences

    if (body.sentences is None) == (body.cells is None):
        raise HTTPException(
            422,
            "Give either 'sentences' (cell sentences) or 'cells' "
            "(gene -> expression records), not both or neither.",
        )
    items = body.sentences if body.sentences is not None else body.cells
    n = len(items)
    if n == 0:
        raise HTTPException(422, "No cells in the request.")
    if n > max_cells:
        raise HTTPException(
            413,
            f"{n} cells in one request; this server takes at most "
            f"{max_cells}. Send them in smaller batches.",
        )
    index = pd.Index([str(i) for i in range(n)])
    if body.sentences is not None:
        return CellSentences.from_text(body.sentences, obs=pd.DataFrame(index=index)), index
    genes = list(dict.fromkeys(g for cell in body.cells for g in cell))
    if not genes:
        raise HTTPException(422, "The cells name no genes.")
    col = {g: j for j, g in enumerate(genes)}
    rows = np.repeat(np.arange(n), [len(c) for c in body.cells])
    cols = np.fromiter((col[g] for c in body.cells for g in c), dtype=np.int64, count=len(rows))
    vals = np.fromiter(
        (v for c in body.cells for v in c.values()), dtype=np.float32, count=len(rows)
    )
    X = sp.csr_matrix((vals, (rows, cols)), shape=(n, len(genes)))
    return ad.AnnData(X=X, obs=pd.DataFrame(index=index), var=pd.DataFrame(index=genes)), index
