"""Cell sentences: the rank kernel, the vocabulary and the ragged integer data model."""

from c2s._deprecate import renamed
from c2s.sentences._augment import drop_genes, shuffle_ties
from c2s.sentences._rank import Ranked, rank, rank_csr
from c2s.sentences._sentences import CellSentences, first_k
from c2s.sentences._vocab import Vocab
from c2s.sources import check_gene_names

__all__ = [
    "CellSentences",
    "Ranked",
    "Vocab",
    "check_gene_names",
    "drop_genes",
    "first_k",
    "from_anndata",
    "rank",
    "rank_csr",
    "shuffle_ties",
]


@renamed(top_k="n_genes")
def from_anndata(
    adata,
    *,
    layer: str | None = None,
    use_raw: bool = False,
    var_names: str | None = None,
    n_genes: int | None = None,
    seed: int = 0,
    obs_keys: list[str] | None = None,
) -> CellSentences:
    """Rank an in-memory AnnData into :class:`CellSentences` (no disk involved).

    Parameters are as in :func:`c2s.io.convert` (``n_genes``: keep each cell's top
    ``n_genes`` genes; default full length); scaled data are refused.

    Returns
    -------
    CellSentences with values, the vocabulary (with cells-expressed counts) and the chosen
    obs columns.
    """
    from c2s.pp import check_expression, require_rankable
    from c2s.sources import open_matrix

    src = open_matrix(adata, layer=layer, use_raw=use_raw, var_names=var_names)
    names = src.gene_names()
    X = src.read_rows(0, src.n_obs)
    require_rankable(check_expression(X), label=src.label, alternatives=[])
    r = rank(X, seed=seed, n_genes=n_genes)
    obs = src.obs if obs_keys is None else src.obs[list(obs_keys)]
    return CellSentences(
        r.genes, r.offsets, Vocab.from_names(names, r.n_expressed), obs.copy(), r.values
    )
