"""Reading a request's cells: JSON (sentences or expression records) or an uploaded .h5ad
(multipart form data, field ``file``). An upload is streamed into a temporary directory of
its own, read, and deleted with it; nothing from the request names a path."""

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

CHUNK = 1 << 20


async def parse(request, cls, *, max_cells: int, max_upload_bytes: int, HTTPException):
    """``(options, data, index)``: the request's options as ``cls``, its cells (ranked
    sentences or an AnnData) and their ids in input order."""
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError

    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        return await _upload(request, cls, max_cells, max_upload_bytes, HTTPException)
    try:
        payload = await request.json()
    except ValueError:
        raise HTTPException(422, "The body is not JSON: send {\"sentences\": [...]} or "
                            "{\"cells\": [...]}, or an .h5ad as multipart form data (field "
                            "'file').") from None  # fmt: skip
    try:
        body = cls.model_validate(payload)
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from None
    data, index = cells_of(body, max_cells, HTTPException)
    return body, data, index


async def _upload(request, cls, max_cells, max_upload_bytes, HTTPException):
    import anndata as ad
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError

    length = int(request.headers.get("content-length") or 0)
    if length > max_upload_bytes:
        raise HTTPException(413, _too_big(length, max_upload_bytes))
    form = await request.form(max_files=1, max_fields=20)
    file = form.get("file")
    if file is None or isinstance(file, str):
        raise HTTPException(422, "Send the .h5ad file as the form field 'file'.")
    try:
        body = cls.model_validate({k: v for k, v in form.items() if k != "file"})
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from None
    with tempfile.TemporaryDirectory(prefix="c2s-upload-") as tmp:
        path = Path(tmp) / "upload.h5ad"
        size = 0
        with open(path, "wb") as f:
            while chunk := await file.read(CHUNK):
                size += len(chunk)
                if size > max_upload_bytes:
                    raise HTTPException(413, _too_big(size, max_upload_bytes))
                f.write(chunk)
        try:
            adata = ad.read_h5ad(path)
        except (OSError, ValueError, KeyError, TypeError) as e:
            name = file.filename or "the upload"
            raise HTTPException(422, f"Cannot read {name} as an .h5ad file: {e}") from None
    if adata.n_obs == 0:
        raise HTTPException(422, "The uploaded file has no cells.")
    if adata.n_obs > max_cells:
        raise HTTPException(413, f"{adata.n_obs} cells in the upload; this server takes at "
                            f"most {max_cells} per request.")  # fmt: skip
    return body, adata, adata.obs_names.astype(str)


def _too_big(size: int, limit: int) -> str:
    return (f"The upload ({size / 1e6:.1f} MB) is over this server's limit of "
            f"{limit / 1e6:.0f} MB.")  # fmt: skip


def cells_of(body, max_cells: int, HTTPException):
    """The JSON request's cells as ranked sentences or an AnnData, indexed "0".."n-1"."""
    import anndata as ad
    import scipy.sparse as sp

    from c2s.sentences import CellSentences

    if (body.sentences is None) == (body.cells is None):
        raise HTTPException(422, "Give either 'sentences' (cell sentences) or 'cells' "
                            "(gene -> expression records), not both or neither.")  # fmt: skip
    items = body.sentences if body.sentences is not None else body.cells
    n = len(items)
    if n == 0:
        raise HTTPException(422, "No cells in the request.")
    if n > max_cells:
        raise HTTPException(413, f"{n} cells in one request; this server takes at most "
                            f"{max_cells}. Send them in smaller batches.")  # fmt: skip
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
