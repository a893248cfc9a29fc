"""Sources of expression rows: what :func:`c2s.io.convert`, :func:`c2s.sentences.from_anndata`
and the verbs read cells from, behind one interface (cells, gene names, row blocks, obs).

- :class:`MatrixSource`: an AnnData in memory, or an .h5ad file read by rows with h5py;
- :class:`SomaSource`: a TileDB-SOMA experiment's query (the CELLxGENE Census);
- :class:`MultiSource`: several inputs one after another, genes aligned by name.

:func:`open_source` picks the kind; :func:`check_gene_names` is the one rule for gene names.
"""

from c2s.sources._genes import check_gene_names, names_from_var
from c2s.sources._matrix import MatrixSource, open_matrix
from c2s.sources._multi import GENE_MODES, MultiSource, open_many
from c2s.sources._open import open_source
from c2s.sources._soma import SYMBOL_COLUMN, SomaSource, is_soma, open_soma, read_soma

__all__ = [
    "GENE_MODES",
    "SYMBOL_COLUMN",
    "MatrixSource",
    "MultiSource",
    "SomaSource",
    "check_gene_names",
    "is_soma",
    "names_from_var",
    "open_many",
    "open_matrix",
    "open_soma",
    "open_source",
    "read_soma",
]
