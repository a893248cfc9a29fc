"""Plots (matplotlib): rank -> expression fits, reconstruction quality, training and reward curves,
confusion matrices, embeddings and the virtual screen; :func:`save_figure` writes any of them to a file."""

from c2s.pl._figure import save_figure
from c2s.pl._inference import confusion_matrix, embedding
from c2s.pl._inverse import inverse_fit, inverse_plots, reconstruction
from c2s.pl._screen import screen_scatter
from c2s.pl._training import loss_curve, reward_curves

__all__ = [
    "confusion_matrix",
    "embedding",
    "inverse_fit",
    "inverse_plots",
    "loss_curve",
    "reconstruction",
    "reward_curves",
    "save_figure",
    "screen_scatter",
]
