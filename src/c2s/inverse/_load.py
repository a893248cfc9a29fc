"""Finding a fitted inverse model wherever it is kept."""

from __future__ import annotations

from c2s._errors import C2SError
from c2s.inverse._models import InverseModel


def load_inverse(spec) -> InverseModel:
    """An :class:`InverseModel` from any place one is kept.

    ``spec`` is a fitted model (returned as it is), :func:`fit_inverse`'s result (its chosen
    model), a model's dict
    (:meth:`InverseModel.to_dict`), a stored fit (the ``inverse`` entry of a dataset's
    metadata or of a model's ``c2s_config.json``: a dict with ``params``), or a c2s dataset
    (:class:`~c2s.io.C2SDataset` or its directory) with a fitted inverse model.
    """
    if hasattr(spec, "predict_sentences"):
        return spec
    if isinstance(getattr(spec, "model", None), InverseModel):  # an InverseFit
        return spec.model
    if not isinstance(spec, dict):
        from c2s.io import as_dataset

        ds = as_dataset(spec)
        if not ds.meta.get("inverse"):
            raise C2SError(f"{ds.path} has no fitted inverse model; run `c2s inverse fit` on it.")
        spec = ds.meta["inverse"]
    return InverseModel.from_dict(spec.get("params", spec))
