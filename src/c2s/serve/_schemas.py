"""The API's request bodies (pydantic) and their documentation. (No ``from __future__ import
annotations``: pydantic and FastAPI read these annotations at run time.)"""

import math
from types import SimpleNamespace
from typing import Annotated


def request_models(most: int, why: str) -> SimpleNamespace:
    """``Cells`` (predict, embed), ``PredictRequest`` (predict, annotate) and
    ``GenerateRequest``, whose ``n_genes`` is at most ``most`` (``why`` says why)."""
    from pydantic import BaseModel, BeforeValidator, Field

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

    class Cells(BaseModel):
        sentences: list[str] | None = Field(None, description="cell sentences, genes highest first")
        cells: list[dict[str, float]] | None = Field(None, description="gene -> expression")
        n_genes: NGenes = Field(
            None, ge=1, le=most, description="genes per sentence (default: the model's)"
        )
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

    return SimpleNamespace(
        Cells=Cells, PredictRequest=PredictRequest, GenerateRequest=GenerateRequest
    )


def body_doc(cls) -> dict:
    """The OpenAPI request body of an endpoint that reads JSON or an uploaded .h5ad."""
    fields = {
        k: v
        for k, v in cls.model_json_schema()["properties"].items()
        if k not in ("sentences", "cells")
    }
    file = {"type": "string", "format": "binary", "description": "an .h5ad file"}
    form = {"type": "object", "properties": {"file": file, **fields}, "required": ["file"]}
    content = {
        "application/json": {"schema": cls.model_json_schema()},
        "multipart/form-data": {"schema": form},
    }
    return {"requestBody": {"required": True, "content": content}}


def validation_detail(errors: list[dict]) -> list[dict]:
    """pydantic's errors without the input each quotes (it can be huge, or a NaN JSON cannot
    hold), and a validator's exception as its message."""

    def entry(e: dict) -> dict:
        out = {}
        for k in e:
            if k == "input":
                continue
            if k == "ctx":
                out[k] = {n: str(v) if isinstance(v, Exception) else v for n, v in e[k].items()}
            else:
                out[k] = e[k]
        return out

    return [entry(e) for e in errors]
