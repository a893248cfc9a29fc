"""Rewards that score biology, for alignment with GRPO (and for anyone's own loop).

Every reward has the signature TRL's ``GRPOTrainer`` calls: ``reward(completions, **columns)
-> list[float]``, one score per completion. ``completions`` are the generated texts (or chat
messages, whose last content is used); ``columns`` are the dataset's columns for the same
examples, as lists (TRL passes all of them, plus its own keywords, which are ignored).

- :func:`label`: 1 for the right label after normalization; ``partial="tokens"`` gives the
  word overlap (Jaccard) instead of 0 for a wrong one. Column ``label``.
- :func:`gene_validity`: the fraction of the answer's words that are distinct genes the
  model knows (``genes=``); a sentence shorter than ``n_genes`` scores less.
- :func:`expression_similarity`: Pearson or Spearman between the expression of the generated
  cell and of the reference cell (``reference_cell``), both from the inverse transform.
- :func:`perturbation_program`: Kendall's tau or Pearson between the predicted and the
  observed change of a gene programme from the control (``control_cell``,
  ``perturbed_cell``; the programme from ``program=`` or a ``program`` column).
- :func:`text_similarity`: cosine similarity of sentence embeddings of the completion and
  ``reference_text`` (an offline model; see :mod:`c2s.metrics`).

:func:`get` binds a reward's options by name (``get("label", partial="tokens")``),
:func:`parse_spec` reads the CLI's ``NAME[:WEIGHT][:KEY=VALUE,...]`` (refusing an option the
reward does not take, a weight that is not a positive number), and :func:`check` refuses
unknown rewards and missing columns before any training.
"""

from c2s.rewards._registry import REWARDS, check, get, parse_spec
from c2s.rewards._rewards import (
    expression_similarity,
    gene_validity,
    label,
    perturbation_program,
    text_similarity,
)

__all__ = [
    "REWARDS",
    "check",
    "expression_similarity",
    "gene_validity",
    "get",
    "label",
    "parse_spec",
    "perturbation_program",
    "text_similarity",
]
