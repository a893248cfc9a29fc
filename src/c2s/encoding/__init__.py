"""Prompt text to token ids, shared by training and inference.

Training text is ``prompt + " " + response`` and EOS, encoded in one call; labels are -100
(:data:`IGNORE`) on the prompt. Inference encodes candidate answers the same way, so a
label's score is the likelihood training taught. Prompts that must fit a model's context
(:func:`fit_prompts`: fewer genes per sentence for a prompt too long) are built the same way
for the :mod:`c2s.tl` verbs and for training's label heads.

Modules: ``_encode`` (text -> token ids, the prompt/response boundary, shortening),
``_flat`` (examples as compact arrays, and as lists), ``_fit`` (prompts within a context).
"""

from c2s.encoding._encode import IGNORE, EncodeStats, encode_text, encode_texts, prompt_within
from c2s.encoding._fit import FittedPrompts, fit_prompts
from c2s.encoding._flat import FlatExamples, encode_examples, encode_flat

__all__ = [
    "IGNORE",
    "EncodeStats",
    "FittedPrompts",
    "FlatExamples",
    "encode_examples",
    "encode_flat",
    "encode_text",
    "encode_texts",
    "fit_prompts",
    "prompt_within",
]
