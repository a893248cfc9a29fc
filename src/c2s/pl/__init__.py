"""Plots (matplotlib): rank -> expression fits and reconstruction quality."""

from c2s.pl._inverse import inverse_fit, reconstruction

__all__ = ["inverse_fit", "reconstruction"]
