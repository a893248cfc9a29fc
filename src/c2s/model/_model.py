"""``C2SModel``: a Hugging Face causal LM, its tokenizer and its ``c2s_config.json``; loading
(``_pretrained.py``) and building from scratch (``_scratch.py``) are read in phases there."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from c2s._atomic import atomic_dir
from c2s._deprecate import renamed
from c2s._errors import C2SError
from c2s._logging import get_logger, quiet_hf_progress
from c2s.model._config import C2SConfig
from c2s.model._device import resolve_device
from c2s.model._pretrained import (
    c2s_config_of,
    check_model_path,
    load_options,
    load_weights_and_tokenizer,
    looks_like_hub_id,
)
from c2s.model._scratch import check_build, model_config, vocabulary

log = get_logger(__name__)


class C2SModel:
    """A causal language model for cell sentences.

    Holds ``model`` (a ``transformers`` causal LM, possibly wrapped by peft), ``tokenizer`` and
    ``config`` (:class:`C2SConfig`). Build one with :meth:`from_pretrained` (hub id or path,
    including the released C2S checkpoints) or :meth:`from_scratch`; train with
    :func:`c2s.train.fine_tune`; save with :meth:`save`.
    """

    def __init__(self, model, tokenizer, config: C2SConfig | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.config = config or C2SConfig()
        self.name_or_path: str | None = getattr(model, "name_or_path", None)
        fix_pad_token(model, tokenizer)
        # True for a model just built by from_scratch: training then uses from-scratch defaults
        self.from_scratch = False
        # gene tries for constrained generation, per (anchor, sep), for one gene list
        self._tries_key: int | None = None
        self._tries: dict[tuple[str, str], object] = {}

    def __repr__(self) -> str:
        kind = getattr(self.model.config, "model_type", "?")
        return (
            f"C2SModel({kind}, {self.n_parameters() / 1e6:.2f}M parameters, "
            f"profile={self.config.profile!r}, tasks={self.config.tasks})"
        )

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def is_peft(self) -> bool:
        return hasattr(self.model, "peft_config")

    def n_parameters(self, trainable: bool = False) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad or not trainable)

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        device: str | None = "auto",
        dtype="auto",
        load_in_4bit: bool = False,
        revision: str | None = None,
        attn_implementation: str | None = None,
        trust_remote_code: bool = False,
    ) -> C2SModel:
        """Load a model by hub id or local path.

        A directory holding a LoRA adapter (``adapter_config.json``) is loaded on top of its
        base model. ``c2s_config.json`` is read when present; without it (a plain language
        model) the defaults apply: the ``compat`` prompt profile and 200 genes.

        Parameters
        ----------
        device
            ``"auto"`` (CUDA, then MPS, then CPU), or any torch device string.
        dtype
            ``"auto"`` (bfloat16 on GPUs that support it, else float32), or a torch dtype.
        load_in_4bit
            Quantize to 4 bits with bitsandbytes (CUDA only), for QLoRA fine-tuning.
        """
        quiet_hf_progress()
        name = str(name_or_path)
        check_model_path(name)
        dev = resolve_device(device)
        kw = load_options(
            dev,
            dtype,
            load_in_4bit=load_in_4bit,
            revision=revision,
            attn_implementation=attn_implementation,
            trust_remote_code=trust_remote_code,
        )
        config, cache_only = c2s_config_of(name, revision)
        model, tokenizer = load_weights_and_tokenizer(
            name, kw, cache_only=cache_only, revision=revision, trust_remote_code=trust_remote_code
        )
        if not load_in_4bit:
            model = model.to(dev)
        model.eval()
        out = cls(model, tokenizer, config)
        out.name_or_path = name
        return out

    @classmethod
    @renamed(data="dataset")
    def from_scratch(
        cls,
        dataset=None,
        *,
        genes: Sequence[str] | None = None,
        preset: str = "tiny",
        architecture: str = "gpt_neox",
        max_length: int = 1024,
        texts: Sequence[str] = (),
        profiles: Sequence[str] = ("compat", "paraphrase"),
        seed: int = 0,
        device: str | None = "auto",
        dropout: float | None = None,
        **overrides,
    ) -> C2SModel:
        """A randomly initialized model with a one-token-per-gene tokenizer.

        Parameters
        ----------
        dataset
            A :class:`~c2s.io.C2SDataset` (or its path): genes, label words and the inverse
            model come from it. Or pass ``genes`` instead. (``data=``, its old name, still
            works for one release, with a warning.)
        preset
            ``"tiny"``, ``"small"`` or ``"base"`` (see ``PRESETS``); ``overrides`` change any
            config field (e.g. ``num_hidden_layers=6``).
        architecture
            ``"gpt_neox"`` (Pythia, as the released C2S models), ``"gpt2"``, ``"llama"`` or
            ``"gemma2"``.
        max_length
            Context length (position embeddings).
        texts
            Extra texts whose words the tokenizer must know (labels, tissues, descriptions,
            an organism other than ``ORGANISMS``).
        dropout
            Dropout probability for the architecture's dropout fields (``DROPOUT_FIELDS``;
            Llama and Gemma 2 have attention dropout only); None keeps its default (0 for
            GPT-NeoX, Llama and Gemma 2, 0.1 for GPT-2).
        """
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        from c2s.model._tokenizer import build_gene_tokenizer

        check_build(preset, architecture)
        config = C2SConfig(max_length=max_length)
        genes, texts, config.inverse = vocabulary(dataset, genes, texts)
        # num_genes can never exceed the context, so numbers up to max_length suffice
        tokenizer = build_gene_tokenizer(
            genes, texts=texts, profiles=profiles, max_number=max_length
        )
        config.set_genes(genes)
        kw = model_config(architecture, preset, tokenizer, max_length, dropout, overrides)
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(architecture, **kw))
        model.to(resolve_device(device))
        out = cls(model, tokenizer, config)
        out.from_scratch = True
        return out

    # -- saving ------------------------------------------------------------------------------
    def save(
        self, path: str | os.PathLike, *, overwrite: bool = False, merge: bool = False
    ) -> Path:
        """Save as a Hugging Face directory plus ``c2s_config.json`` (atomically).

        A LoRA model is saved as its adapter (loadable with :meth:`from_pretrained`, or
        ``peft`` / ``transformers`` with peft installed) unless ``merge``, which folds the
        adapter into the weights and saves a plain model.
        """
        model, config = self.model, self.config
        if self.is_peft:
            if merge:
                model = model.merge_and_unload()
                config.adapter = False
            else:
                config.adapter = True
                config.base_model = check_adapter_base(model)
        with atomic_dir(path, overwrite=overwrite, kind="model") as tmp:
            model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            _portable_tokenizer_class(tmp)
            config.save(tmp)
        if merge and self.is_peft:
            self.model = model
        return Path(path)

    # -- caches -----------------------------------------------------------------------------
    def gene_trie(self, genes: Sequence[str], *, anchor: str = "Cell sentence:", sep: str = " "):
        """The :class:`~c2s.model.GeneTrie` of ``genes`` as they follow ``anchor + sep`` in
        this model's tokenizer. Tries are cached per gene list (one list at a time), since
        building one tokenizes every gene."""
        from c2s.model._layout import GeneTrie

        key = hash(tuple(genes))
        if self._tries_key != key:
            self._tries_key, self._tries = key, {}
        if (anchor, sep) not in self._tries:
            self._tries[(anchor, sep)] = GeneTrie(self.tokenizer, genes, anchor=anchor, sep=sep)
        return self._tries[(anchor, sep)]


def _portable_tokenizer_class(directory: Path) -> None:
    """transformers 5 records a generic fast tokenizer as ``TokenizersBackend``, a class older
    releases lack; ``PreTrainedTokenizerFast`` loads the same tokenizer.json in both."""
    path = directory / "tokenizer_config.json"
    if path.exists():
        cfg = json.loads(path.read_text())
        if cfg.get("tokenizer_class") == "TokenizersBackend":
            cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
            path.write_text(json.dumps(cfg, indent=2) + "\n")


def check_adapter_base(peft_model) -> str:
    """The adapter's base model, which must be loadable again (a directory or a hub id)."""
    base = peft_model.peft_config["default"].base_model_name_or_path
    if not base or not (Path(base).is_dir() or looks_like_hub_id(base)):
        raise C2SError(
            "The LoRA base model was never saved, so an adapter alone could not be loaded "
            "again: save merged (merge=True, --merge), or start from a saved or hub model."
        )
    return base


def fix_pad_token(model, tokenizer) -> None:
    """Give the tokenizer a pad token when it has none (Pythia, GPT-2, Llama).

    EOS doubles as the pad token; training masks padding by the attention mask and labels,
    never by token id, so EOS is still attended and trained. The model's config follows the
    tokenizer.
    """
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise C2SError("The tokenizer has neither a pad nor an EOS token; set one first.")
        tokenizer.pad_token = tokenizer.eos_token
    for cfg in (getattr(model, "config", None), getattr(model, "generation_config", None)):
        if cfg is not None:
            cfg.pad_token_id = tokenizer.pad_token_id
