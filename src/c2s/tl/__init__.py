"""AnnData verbs (scanpy style) running a C2S model: predict, embed, generate, perturb,
describe. Parameters after the data and the model are keyword-only; what a verb writes is in
its docstring."""

from c2s.tl._verbs import attention, describe, embed, generate, perturb, predict

__all__ = ["attention", "describe", "embed", "generate", "perturb", "predict"]
