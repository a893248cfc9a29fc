"""Data for tests, docs and benchmarks: synthetic counts, synthetic perturbation data with
planted effects, and scanpy's bundled PBMCs."""

from c2s.datasets._pbmc import pbmc68k_reduced
from c2s.datasets._perturbation import MHC_I, synthetic_perturbation
from c2s.datasets._synthetic import synthetic, write_synthetic_h5ad

__all__ = [
    "MHC_I",
    "pbmc68k_reduced",
    "synthetic",
    "synthetic_perturbation",
    "write_synthetic_h5ad",
]
