"""Evaluation (``c2s evaluate``): a model against cheap baselines on a dataset's held-out cells.

For each task the model was trained for (its ``c2s_config.json``), on the same split:

- every label task (``cell_type_prediction``; ``tissue_prediction`` on groups of cells that
  share the label): the model's label scoring (raw, content-free calibrated, per-token, and
  with the validation-fitted biases when the model has them) and its linear probe, next to
  logistic regression and k-NN on PCA, both fit on the training cells' stored expression;
- ``cell_type_generation``: as many cells per label as the held-out split has, compared with
  the held-out cells next to two references built from the training cells, the class-mean
  cell and resampled real cells. Every side is put in the same form first: its top-n genes
  (n = the model's genes per sentence) turned into expression by the dataset's inverse
  transform, so generated and real cells differ only in which genes they name and in what
  order (optionally also the Frechet distance in the model's embedding space);
- ``natural_language_interpretation``: each held-out group's description against its
  reference text (shared-word F1; embedding cosine when the offline model is installed);
- always: k-NN accuracy of the model's embeddings (held-out cells classified by their
  training neighbours) and the inverse transform's reconstruction of the held-out cells.

Tasks it cannot score yet (multi-cell generation, for one) are listed under ``skipped``; an
unknown task name is an error. :func:`report_sections` and :func:`headline_table` turn a
result into Markdown.
"""

from c2s.evaluation._evaluate import evaluate
from c2s.evaluation._options import EvalOptions
from c2s.evaluation._report import headline_table, report_sections, write_outputs

__all__ = ["EvalOptions", "evaluate", "headline_table", "report_sections", "write_outputs"]
