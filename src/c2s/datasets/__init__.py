"""Data for tests, docs and benchmarks: synthetic counts and scanpy's bundled PBMCs."""

from c2s.datasets._pbmc import pbmc68k_reduced
from c2s.datasets._synthetic import synthetic, write_synthetic_h5ad

__all__ = ["pbmc68k_reduced", "synthetic", "write_synthetic_h5ad"]
