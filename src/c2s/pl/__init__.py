"""Plots (matplotlib): rank -> expression fits, reconstruction quality, training curves,
confusion matrices and embeddings."""

from c2s.pl._inference import confusion_matrix, embedding
from c2s.pl._inverse import inverse_fit, reconstruction
from c2s.pl._training import loss_curve

__all__ = ["confusion_matrix", "embedding", "inverse_fit", "loss_curve", "reconstruction"]
