"""Models: :class:`C2SModel` (load, build from scratch, save, fine-tune) and gene tokenizers.

Heavy imports (torch, transformers, peft) happen inside functions.
"""

from c2s.model._config import CONFIG_FILE, C2SConfig, vocab_hash
from c2s.model._model import (
    ARCHITECTURES,
    LORA_TARGETS,
    PRESETS,
    C2SModel,
    fix_pad_token,
    lora_targets,
    resolve_device,
    resolve_dtype,
)
from c2s.model._tokenizer import build_gene_tokenizer, pieces

__all__ = [
    "ARCHITECTURES",
    "CONFIG_FILE",
    "LORA_TARGETS",
    "PRESETS",
    "C2SConfig",
    "C2SModel",
    "build_gene_tokenizer",
    "fix_pad_token",
    "lora_targets",
    "pieces",
    "resolve_device",
    "resolve_dtype",
    "vocab_hash",
]
