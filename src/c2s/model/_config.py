"""``c2s_config.json``: what a C2S model needs beside its weights to be used correctly."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from c2s._errors import C2SError
from c2s._version import __version__

CONFIG_FILE = "c2s_config.json"


def vocab_hash(genes) -> str:
    """SHA-256 of the gene names in order (one per line)."""
    return hashlib.sha256("\n".join(map(str, genes)).encode()).hexdigest()


@dataclass
class C2SConfig:
    """Metadata saved as ``c2s_config.json`` beside the Hugging Face files.

    Attributes
    ----------
    profile
        Prompt profile the model was trained with (``"compat"`` for the released formats).
    n_genes
        Genes per cell sentence in training prompts (``None``: unknown, e.g. a plain LM).
    organism
        Organism named in prompts (``None``: taken from the data).
    tasks
        Tasks the model was trained on.
    labels
        Label values seen in training, per obs column (e.g. ``{"cell_type": [...]}``); these
        are the candidates when predicting by scoring.
    genes
        The gene vocabulary (display names) of the training data.
    vocab_sha256
        Hash of ``genes``, to check that data and model agree.
    inverse
        Fitted inverse model (rank -> expression) of the training data.
    max_length
        Context length used in training.
    base_model
        Hub id or path of the model this one was fine-tuned from (``None``: from scratch).
    adapter
        True when the directory holds a LoRA adapter on ``base_model``, not full weights.
    training
        A summary of the last training run (steps, losses, data sizes).
    probe
        A linear probe on the model's cell embeddings (task, label column, pooling, layer,
        genes per cell, and the fitted weights; see :func:`c2s.model.fit_probe`), used by
        ``c2s.tl.predict(mode="probe")``.
    calibration
        Per-label biases for label scoring fitted on the validation cells after training
        (task, label column, labels, biases; see :func:`c2s.model.fit_label_bias`), used by
        ``c2s.tl.predict(calibration="validation")``.
    perturbations
        Perturbation names seen in training pairs (``perturbation_prediction``); ``perturb``
        and ``screen`` warn about others. ``None``: not recorded (a model saved before c2s
        recorded them, or never trained on perturbations), so nothing is said.
    """

    profile: str = "compat"
    n_genes: int | None = None
    organism: str | None = None
    tasks: list[str] = field(default_factory=list)
    labels: dict[str, list[str]] = field(default_factory=dict)
    genes: list[str] | None = None
    vocab_sha256: str | None = None
    inverse: dict | None = None
    max_length: int | None = None
    base_model: str | None = None
    adapter: bool = False
    training: dict = field(default_factory=dict)
    probe: dict | None = None
    calibration: dict | None = None
    perturbations: list[str] | None = None
    package_version: str = __version__

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> C2SConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, directory: str | os.PathLike) -> None:
        self.package_version = __version__
        Path(directory, CONFIG_FILE).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, directory: str | os.PathLike) -> C2SConfig:
        path = Path(directory, CONFIG_FILE)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise C2SError(f"Cannot read {path}: {e}") from e
        if not isinstance(data, dict):
            raise C2SError(
                f"{path} holds a JSON {type(data).__name__}, not an object of c2s settings: the "
                "file is damaged; restore it from the model's source."
            )
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as e:
            raise C2SError(f"Cannot read {path}: {e}") from e

    def set_genes(self, genes) -> None:
        self.genes = [str(g) for g in genes]
        self.vocab_sha256 = vocab_hash(self.genes)

    def add_labels(self, column: str, values) -> None:
        seen = set(self.labels.get(column, []))
        seen.update(str(v) for v in values)
        self.labels[column] = sorted(seen)
