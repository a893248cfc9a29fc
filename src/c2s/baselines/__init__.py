"""Cheap baselines to hold a C2S model against, fit on the same split.

Annotation (cells x genes expression in, one label per cell out):

- :func:`logistic_regression` - CellTypist-style: every gene scaled to unit variance, then a
  multinomial L2-regularized logistic regression on log-normalized expression;
- :func:`knn_pca` - k-nearest neighbours (majority vote) in a PCA space fit on the training
  cells.

Generation (one synthetic cell per requested label, on the training cells' genes):

- :func:`class_mean_cells` - the mean training cell of the label (no cell-to-cell variation);
- :func:`resampled_cells` - training cells of the label drawn at random: real cells, so an
  upper reference for what a generator could reach against held-out cells.

:func:`expression` loads a dataset split as a cells x vocabulary matrix.
"""

from c2s.baselines._baselines import (
    class_mean_cells,
    expression,
    knn_pca,
    logistic_regression,
    resampled_cells,
)

__all__ = ["class_mean_cells", "expression", "knn_pca", "logistic_regression", "resampled_cells"]
