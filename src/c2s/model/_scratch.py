"""Building a model from scratch: the sizes and architectures on offer, the words its
one-token-per-gene tokenizer must know (genes, label values, organisms), and the
transformers config of the new model."""

from __future__ import annotations

from collections.abc import Sequence

from c2s._errors import C2SError
from c2s._warn import warn_user

# From-scratch sizes. ``tiny`` is for tests, ``small`` trains on PBMC in minutes on 2 CPU cores,
# ``base`` wants a GPU. Heads divide the hidden size in every preset.
PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4},
    "small": {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4},
    "base": {"hidden_size": 512, "num_hidden_layers": 8, "num_attention_heads": 8},
}
ARCHITECTURES = ("gpt_neox", "gpt2", "llama", "gemma2")
# The config fields that ``from_scratch(dropout=)`` sets, per architecture.
DROPOUT_FIELDS = {
    "gpt_neox": ("attention_dropout", "hidden_dropout"),
    "gpt2": ("attn_pdrop", "resid_pdrop", "embd_pdrop"),
    "llama": ("attention_dropout",),
    "gemma2": ("attention_dropout",),
}
# Organism names as the released models' prompts spell them (docs/formats.md).
ORGANISMS = ("Homo sapiens", "Mus musculus")


def check_build(preset: str, architecture: str) -> None:
    if preset not in PRESETS:
        raise C2SError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    if architecture not in ARCHITECTURES:
        raise C2SError(
            f"Unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}."
        )


def vocabulary(dataset, genes, texts: Sequence[str]) -> tuple[list, list[str], dict | None]:
    """``(genes, texts, inverse)`` of a new model: the genes and label words of ``dataset``
    (a :class:`~c2s.io.C2SDataset` or its path; None: ``genes`` as given) and its inverse
    model, with the organisms the prompts name whatever the data's obs hold."""
    texts = [*ORGANISMS, *texts]
    inverse = None
    if dataset is not None:
        from c2s.io import as_dataset

        ds = as_dataset(dataset)
        genes = ds.vocab.display_names.tolist()
        texts += obs_words(ds.obs())
        inverse = ds.meta.get("inverse")
    if genes is None or len(genes) == 0:
        raise C2SError("from_scratch needs a dataset or a list of gene names.")
    return genes, texts, inverse


def model_config(
    architecture: str, preset: str, tokenizer, max_length: int, dropout, overrides: dict
) -> dict:
    """The ``AutoConfig.for_model`` fields of a new model: the preset's sizes (with
    ``dropout`` on the architecture's dropout fields, then ``overrides``), the tokenizer's
    vocabulary and special tokens, ``max_length`` positions."""
    if dropout is not None and not 0 <= dropout < 1:
        raise C2SError(f"dropout must lie in [0, 1), got {dropout}.")
    drop = {} if dropout is None else dict.fromkeys(DROPOUT_FIELDS[architecture], dropout)
    size = {**PRESETS[preset], **drop, **overrides}
    kw = {
        "vocab_size": len(tokenizer),
        "max_position_embeddings": max_length,
        "intermediate_size": 4 * size["hidden_size"],
        "bos_token_id": tokenizer.eos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        **size,
    }
    if architecture == "gpt2":
        kw["n_inner"] = kw.pop("intermediate_size")
    elif architecture in ("llama", "gemma2"):
        kw.setdefault("num_key_value_heads", kw["num_attention_heads"])
        kw.setdefault("head_dim", kw["hidden_size"] // kw["num_attention_heads"])
    return kw


def obs_words(obs, max_values: int = 10_000) -> list[str]:
    """String values of the label-like obs columns (for the tokenizer's word list)."""
    out: list[str] = []
    for c in obs.columns:
        if c == "split":
            continue
        col = obs[c]
        if col.dtype.kind in "fiub" and not hasattr(col, "cat"):
            continue
        values = col.dropna().astype(str).unique()
        if len(values) <= max_values:
            out += values.tolist()
        else:
            warn_user(
                f"obs column {c!r} has {len(values)} distinct values; its words are not added "
                "to the tokenizer.",
            )
    return out
