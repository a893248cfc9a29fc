"""Metrics as plain functions on arrays."""

from c2s.metrics._regression import pearson, r2_score, reconstruction_metrics, spearman

__all__ = ["pearson", "r2_score", "reconstruction_metrics", "spearman"]
