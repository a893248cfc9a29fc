"""Metrics as plain functions on arrays (and AnnData), each documented with its definition.

- annotation: :func:`accuracy`, :func:`macro_f1`, :func:`balanced_accuracy`,
  :func:`classification_report`, :func:`confusion_matrix`, :func:`annotation_metrics`,
  :func:`bootstrap_intervals`;
- reconstruction: :func:`r2_score`, :func:`pearson`, :func:`spearman`,
  :func:`reconstruction_metrics`;
- generated vs real cells: :func:`knn_accuracy`, :func:`mmd_rbf`, :func:`energy_distance`,
  :func:`wasserstein`, :func:`gromov_wasserstein`, :func:`frechet_distance`, :func:`scfid`,
  :func:`gene_validity`, :func:`gene_uniqueness`, :func:`top_gene_overlap`,
  :func:`generation_metrics`, and :func:`as_matrix` (cells x features from an array, a
  sparse matrix or an AnnData);
- perturbation: :func:`perturbation_metrics`, :func:`kendall_tau`;
- text: :func:`text_similarity`, :func:`token_f1`, :func:`sentence_encoder`.
"""

from c2s.metrics._annotation import (
    accuracy,
    annotation_metrics,
    balanced_accuracy,
    bootstrap_intervals,
    classification_report,
    confusion_matrix,
    macro_f1,
)
from c2s.metrics._generation import (
    as_matrix,
    energy_distance,
    frechet_distance,
    gene_uniqueness,
    gene_validity,
    generation_metrics,
    gromov_wasserstein,
    knn_accuracy,
    median_bandwidth,
    mmd_rbf,
    pca_space,
    scfid,
    top_gene_overlap,
    wasserstein,
)
from c2s.metrics._perturbation import kendall_tau, perturbation_metrics
from c2s.metrics._regression import pearson, r2_score, reconstruction_metrics, spearman
from c2s.metrics._text import DEFAULT_TEXT_MODEL, sentence_encoder, text_similarity, token_f1

__all__ = [
    "DEFAULT_TEXT_MODEL",
    "accuracy",
    "annotation_metrics",
    "as_matrix",
    "balanced_accuracy",
    "bootstrap_intervals",
    "classification_report",
    "confusion_matrix",
    "energy_distance",
    "frechet_distance",
    "gene_uniqueness",
    "gene_validity",
    "generation_metrics",
    "gromov_wasserstein",
    "kendall_tau",
    "knn_accuracy",
    "macro_f1",
    "median_bandwidth",
    "mmd_rbf",
    "pca_space",
    "pearson",
    "perturbation_metrics",
    "r2_score",
    "reconstruction_metrics",
    "scfid",
    "sentence_encoder",
    "spearman",
    "text_similarity",
    "token_f1",
    "top_gene_overlap",
    "wasserstein",
]
