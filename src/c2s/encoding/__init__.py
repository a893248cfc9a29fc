"""Prompt text to token ids, shared by training and inference.

Training text is ``prompt + " " + response`` and EOS, encoded in one call; labels are -100
(:data:`IGNORE`) on the prompt. Inference encodes candidate answers the same way, so a
label's score is the likelihood training taught.
"""

from c2s.encoding._encode import (
    IGNORE,
    EncodeStats,
    encode_examples,
    encode_text,
    encode_texts,
    prompt_within,
)
from c2s.encoding._flat import FlatExamples, encode_flat

__all__ = [
    "IGNORE",
    "EncodeStats",
    "FlatExamples",
    "encode_examples",
    "encode_flat",
    "encode_text",
    "encode_texts",
    "prompt_within",
]
