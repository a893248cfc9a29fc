"""Models: tokenizers for from-scratch models (heavy imports happen inside functions)."""

from c2s.model._tokenizer import build_gene_tokenizer, pieces

__all__ = ["build_gene_tokenizer", "pieces"]
