"""The one entrance: :func:`open_source` picks the kind of source an input is."""

from __future__ import annotations

from c2s._errors import C2SError
from c2s.sources._matrix import MatrixSource, open_matrix
from c2s.sources._multi import open_many
from c2s.sources._soma import is_soma, open_soma


def open_source(
    data,
    *,
    layer: str | None = None,
    use_raw: bool = False,
    var_names: str | None = None,
    measurement: str = "RNA",
    x_name: str | None = None,
    obs_value_filter: str | None = None,
    var_value_filter: str | None = None,
    genes: str = "same",
    source_key: str = "source_file",
) -> MatrixSource:
    """The rows of ``data`` as a source, whatever it is: an AnnData (in memory or backed) or
    an .h5ad path (:class:`~c2s.sources.MatrixSource`), a TileDB-SOMA experiment by URI or
    opened (:class:`~c2s.sources.SomaSource`), or a list of AnnData objects and .h5ad paths
    (:class:`~c2s.sources.MultiSource`; a list of one is that one input).

    Parameters
    ----------
    layer, use_raw
        AnnData / .h5ad: read ``layers[layer]`` or ``raw.X`` instead of ``X``.
    var_names
        A var column to take gene names from (SOMA default: ``feature_name`` where var has
        it, the Census's symbols).
    measurement, x_name, obs_value_filter, var_value_filter
        SOMA: the measurement, its X layer, and the cells and genes to read (TileDB-SOMA
        value filters).
    genes, source_key
        Several inputs: how their gene sets are aligned (``"same"``, ``"union"``,
        ``"intersection"``) and the obs column naming each cell's input.
    """
    if isinstance(data, list | tuple):
        if len(data) != 1:
            if not data or any(is_soma(d) for d in data):
                raise C2SError(
                    "Several inputs must be AnnData objects or .h5ad files (one SOMA "
                    "experiment at a time, with a query for its cells)."
                )
            return open_many(
                list(data),
                layer=layer,
                use_raw=use_raw,
                var_names=var_names,
                genes=genes,
                source_key=source_key,
            )
        data = data[0]
    if is_soma(data):
        if layer is not None or use_raw:
            raise C2SError(
                "A SOMA experiment's matrix is chosen by measurement= and x_name= "
                "(--measurement, --x-name), not layer / use_raw."
            )
        return open_soma(
            data,
            measurement=measurement,
            x_name=x_name,
            obs_value_filter=obs_value_filter,
            var_value_filter=var_value_filter,
            var_names=var_names,
        )
    if obs_value_filter is not None or var_value_filter is not None or x_name is not None:
        raise C2SError(
            "obs_value_filter, var_value_filter and x_name apply to TileDB-SOMA "
            "experiments; select an AnnData's cells and genes by slicing it."
        )
    return open_matrix(data, layer=layer, use_raw=use_raw, var_names=var_names)
