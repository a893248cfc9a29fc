"""Training: prompt tokenization with response-only labels, batching, and fine-tuning."""

from c2s.train._config import TrainConfig, task_weights
from c2s.train._encode import (
    IGNORE,
    EncodeStats,
    PromptCollator,
    encode_examples,
    encode_text,
    encode_texts,
)
from c2s.train._trainer import TrainResult, build_examples, fine_tune

__all__ = [
    "IGNORE",
    "EncodeStats",
    "PromptCollator",
    "TrainConfig",
    "TrainResult",
    "build_examples",
    "encode_examples",
    "encode_text",
    "encode_texts",
    "fine_tune",
    "task_weights",
]
