"""Training data: prompt tokenization with response-only labels, shortening, batching."""

from c2s.train._encode import IGNORE, EncodeStats, PromptCollator, encode_examples, encode_text

__all__ = ["IGNORE", "EncodeStats", "PromptCollator", "encode_examples", "encode_text"]
