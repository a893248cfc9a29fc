"""Plots (matplotlib): rank -> expression fits, reconstruction quality, training curves."""

from c2s.pl._inverse import inverse_fit, reconstruction
from c2s.pl._training import loss_curve

__all__ = ["inverse_fit", "loss_curve", "reconstruction"]
