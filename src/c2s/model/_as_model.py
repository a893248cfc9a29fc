"""The one place a "model or its path" argument becomes a model."""

from __future__ import annotations

import os


def as_model(model, *, device: str = "auto", **load):
    """``model`` itself when it is a :class:`~c2s.model.C2SModel`, else
    ``C2SModel.from_pretrained(model, device=device, **load)`` (a directory or hub id)."""
    from c2s.model._model import C2SModel

    if isinstance(model, C2SModel):
        return model
    if not isinstance(model, str | os.PathLike):
        raise TypeError(
            f"model must be a C2SModel, a model directory or a hub id, not {type(model).__name__}."
        )
    return C2SModel.from_pretrained(model, device=device, **load)
