"""Models: :class:`C2SModel` (load, build from scratch, save), gene tokenizers, and the
inference kernels the :mod:`c2s.tl` verbs run on prompts.

Kernels (prompts in, arrays out; batched by length, left-padded, under
``torch.inference_mode``): :func:`score_answers` (the log-likelihood of every candidate
answer; :func:`fit_label_bias` calibrates it), :func:`decode_constrained` (greedy decoding
among candidates), :func:`generate_free` (plain decoding), :func:`embed_prompts` (pooled
hidden states), :func:`gene_attention`, and gene-constrained generation (:class:`GeneTrie`,
:func:`cell_layout`, :func:`generate_cells`). Inside :func:`across_ranks`, under torchrun,
every kernel splits its batches across the processes.
Heavy imports (torch, transformers, peft) happen inside functions.
"""

from c2s.model._as_model import as_model
from c2s.model._calibrate import CALIBRATIONS, fit_label_bias, label_bias, softmax
from c2s.model._config import CONFIG_FILE, C2SConfig, vocab_hash
from c2s.model._decode import decode_constrained, generate_free
from c2s.model._device import check_dtype, resolve_device, resolve_dtype
from c2s.model._embed import POOLING, embed_prompts, gene_attention
from c2s.model._generate import generate_cells, generate_genes
from c2s.model._layout import CellLayout, GeneTrie, cell_layout
from c2s.model._loading import check_torch_file
from c2s.model._lora import LORA_TARGETS, lora_targets
from c2s.model._model import C2SModel, check_adapter_base, fix_pad_token
from c2s.model._probe import fit_probe, probe_probabilities
from c2s.model._ranks import across_ranks, launched_world_size
from c2s.model._score import score_answers
from c2s.model._scratch import ARCHITECTURES, PRESETS
from c2s.model._tokenizer import build_gene_tokenizer, pieces

__all__ = [
    "ARCHITECTURES",
    "CALIBRATIONS",
    "CONFIG_FILE",
    "LORA_TARGETS",
    "POOLING",
    "PRESETS",
    "C2SConfig",
    "C2SModel",
    "CellLayout",
    "GeneTrie",
    "across_ranks",
    "as_model",
    "build_gene_tokenizer",
    "cell_layout",
    "check_adapter_base",
    "check_dtype",
    "check_torch_file",
    "decode_constrained",
    "embed_prompts",
    "fit_label_bias",
    "fit_probe",
    "fix_pad_token",
    "gene_attention",
    "generate_cells",
    "generate_free",
    "generate_genes",
    "label_bias",
    "launched_world_size",
    "lora_targets",
    "pieces",
    "probe_probabilities",
    "resolve_device",
    "resolve_dtype",
    "score_answers",
    "softmax",
    "vocab_hash",
]
