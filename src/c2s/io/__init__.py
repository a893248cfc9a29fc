"""The c2s dataset store (Parquet shards), and interop with Hugging Face and the reference."""

from c2s.io._check import check_dataset
from c2s.io._dask import dask_client
from c2s.io._dataset import C2SDataset, as_dataset, read_dataset
from c2s.io._h5ad import write_h5ad
from c2s.io._reference import export_reference, import_reference
from c2s.io._split import SPLITS, assign_splits
from c2s.io._write import convert, write_sentences
from c2s.sources import is_soma, read_soma

__all__ = [
    "SPLITS",
    "C2SDataset",
    "as_dataset",
    "assign_splits",
    "check_dataset",
    "convert",
    "dask_client",
    "export_reference",
    "import_reference",
    "is_soma",
    "read_dataset",
    "read_soma",
    "write_h5ad",
    "write_sentences",
]
