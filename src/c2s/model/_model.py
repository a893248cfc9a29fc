"""``C2SModel``: a Hugging Face causal LM, its tokenizer and its ``c2s_config.json``."""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

from c2s._atomic import atomic_dir
from c2s._errors import C2SError
from c2s._logging import get_logger, peft_wrapping, quiet_hf_progress
from c2s.model._config import CONFIG_FILE, C2SConfig
from c2s.model._device import check_4bit, resolve_device, resolve_dtype
from c2s.model._loading import adapter_base, held_load_report, hub_cache_only, loading_error

log = get_logger(__name__)

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")

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

# LoRA target modules per architecture (module names as they appear in the models).
LORA_TARGETS: dict[str, list[str]] = {
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gptj": ["q_proj", "k_proj", "v_proj", "out_proj", "fc_in", "fc_out"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
    "phi": ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"],
    "falcon": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
}
_LLAMA_LIKE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
for _arch in ("llama", "mistral", "mixtral", "gemma", "gemma2", "gemma3_text", "qwen2", "qwen3"):
    LORA_TARGETS[_arch] = _LLAMA_LIKE


def lora_targets(model, targets: Sequence[str] | None = None) -> list[str]:
    """LoRA target module names for ``model``: ``targets`` if given, else the architecture's.

    Every name must match a linear layer of the model, so a wrong name fails here, not by
    silently training nothing.
    """
    import torch

    model_type = getattr(model.config, "model_type", None)
    if targets is None:
        if model_type not in LORA_TARGETS:
            raise C2SError(
                f"No default LoRA targets for model type {model_type!r}; pass them with "
                "lora_targets / --lora-targets (names of its Linear modules)."
            )
        targets = LORA_TARGETS[model_type]
    targets = list(targets)
    linear = {
        name.rsplit(".", 1)[-1]
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) or type(m).__name__ == "Conv1D"
    }
    missing = [t for t in targets if t not in linear]
    if missing:
        raise C2SError(
            f"LoRA targets {missing} match no linear layer of this {model_type} model; its "
            f"linear layers are: {', '.join(sorted(linear))}."
        )
    return targets


def _read_remote_config(
    name: str, revision: str | None, cache_only: bool = False
) -> C2SConfig | None:
    """``c2s_config.json`` from a hub repo; None when the repo has none (a plain language
    model) or ``name`` is no hub repo (loading the model then says why). When the hub cannot
    be asked (offline, network error) the defaults apply, with a warning that says so."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        path = hf_hub_download(name, CONFIG_FILE, revision=revision, local_files_only=cache_only)
    except LocalEntryNotFoundError as e:  # offline, and not in the local cache
        _no_remote_config(name, e)
        return None
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError, GatedRepoError):
        return None
    except HFValidationError:  # not a hub id (and not a local path either)
        return None
    except (HfHubHTTPError, OSError) as e:  # the hub could not be reached
        _no_remote_config(name, e)
        return None
    return C2SConfig.load(Path(path).parent)


def _no_remote_config(name: str, error: Exception) -> None:
    warnings.warn(
        f"Could not check {name!r} on the Hugging Face hub for a c2s_config.json "
        f"({type(error).__name__}: {error}); the defaults apply (compat prompts, 200 genes). "
        "Pass n_genes, organism and labels yourself, or load the model from a local directory.",
        stacklevel=4,
    )


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
        c = self.model.config
        return (
            f"C2SModel({getattr(c, 'model_type', '?')}, {self.n_parameters() / 1e6:.2f}M parameters, "
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
        from safetensors import SafetensorError
        from transformers import AutoModelForCausalLM, AutoTokenizer

        quiet_hf_progress()
        name = str(name_or_path)
        local = Path(name)
        if not local.exists() and not _looks_like_hub_id(name):
            raise C2SError(
                f"No model at {name!r}: there is no such directory, and it is not a hub id "
                "(owner/name), so the hub is not asked. Check the path."
            )
        if local.exists() and not local.is_dir():
            raise C2SError(f"{name!r} is a file; pass the model's directory.")
        if local.is_dir() and not (
            (local / "config.json").exists() or (local / "adapter_config.json").exists()
        ):
            raise C2SError(
                f"{name!r} is not a model directory (no config.json or adapter_config.json)."
            )
        dev = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, dev)
        kw: dict = {"dtype": torch_dtype, "trust_remote_code": trust_remote_code}
        if revision:
            kw["revision"] = revision
        if attn_implementation:
            kw["attn_implementation"] = attn_implementation
        if load_in_4bit:
            check_4bit(dev)
            from transformers import BitsAndBytesConfig

            kw["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_compute_dtype=torch_dtype,
                bnb_4bit_use_double_quant=True,
            )
            kw["device_map"] = {"": dev.index or 0}
        config = C2SConfig.load(local) if (local / CONFIG_FILE).exists() else None
        cache_only = not local.exists() and hub_cache_only(name, revision)
        if config is None and not local.exists():
            config = _read_remote_config(name, revision, cache_only)
        adapter = local / "adapter_config.json"
        try:
            with held_load_report() as report:
                if adapter.exists():
                    from peft import PeftModel

                    base = adapter_base(adapter)
                    base_only = _looks_like_hub_id(base) and hub_cache_only(base)
                    model = AutoModelForCausalLM.from_pretrained(base, **kw, **_cache(base_only))
                    with peft_wrapping():
                        model = PeftModel.from_pretrained(model, name)
                else:
                    model = AutoModelForCausalLM.from_pretrained(name, **kw, **_cache(cache_only))
            tokenizer = AutoTokenizer.from_pretrained(
                name,
                revision=revision,
                trust_remote_code=trust_remote_code,
                **_cache(cache_only, False),
            )
        except OSError as e:
            raise C2SError(
                f"Cannot load a model from {name!r}: {e}\nPass a local model directory, or a "
                "hub id (e.g. vandijklab/C2S-Pythia-410m-cell-type-prediction) with network access."
            ) from e
        # A damaged weights file (SafetensorError), or a config transformers cannot build
        # (ValueError: an unknown model_type, bad sizes): the directory is not usable.
        except (ValueError, SafetensorError) as e:
            raise C2SError(
                f"Cannot load the model in {name!r}: {' '.join(str(e).split())[:300]} The "
                "directory is damaged or holds a model transformers cannot build."
            ) from e
        except Exception as e:  # pickled weights, weights of another shape
            refusal = loading_error(name, e, report)
            if refusal is None:
                raise
            raise refusal from e
        if not load_in_4bit:
            model = model.to(dev)
        model.eval()
        out = cls(model, tokenizer, config)
        out.name_or_path = name
        return out

    @classmethod
    def from_scratch(
        cls,
        data=None,
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
        data
            A :class:`~c2s.io.C2SDataset` (or its path): genes, label words and the inverse
            model come from it. Or pass ``genes`` instead.
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

        if preset not in PRESETS:
            raise C2SError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
        if architecture not in ARCHITECTURES:
            raise C2SError(
                f"Unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}."
            )
        config = C2SConfig(max_length=max_length)
        texts = [*ORGANISMS, *texts]  # the prompts' organism, whatever the data's obs hold
        if data is not None:
            from c2s.io import C2SDataset

            ds = data if isinstance(data, C2SDataset) else C2SDataset(data)
            genes = ds.vocab.display_names.tolist()
            texts += obs_words(ds.obs())
            config.inverse = ds.meta.get("inverse")
        if genes is None or len(genes) == 0:
            raise C2SError("from_scratch needs a dataset or a list of gene names.")
        # num_genes can never exceed the context, so numbers up to max_length suffice
        tokenizer = build_gene_tokenizer(
            genes, texts=texts, profiles=profiles, max_number=max_length
        )
        config.set_genes(genes)
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
        from c2s.model._generate import GeneTrie

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


def _cache(only: bool, model: bool = True) -> dict:
    """Loading keywords that keep transformers off the network (its adapter lookup takes
    its own: transformers 5 does not hand it ``local_files_only``)."""
    if not only:
        return {}
    return {
        "local_files_only": True,
        **({"adapter_kwargs": {"local_files_only": True}} if model else {}),
    }


def _looks_like_hub_id(name: str) -> bool:
    """``owner/name`` of letters, digits, ``-``, ``_`` and ``.``, not an existing path."""
    return bool(_HUB_ID.fullmatch(name)) and not Path(name).exists()


def check_adapter_base(peft_model) -> str:
    """The adapter's base model, which must be loadable again (a directory or a hub id)."""
    base = peft_model.peft_config["default"].base_model_name_or_path
    if not base or not (Path(base).is_dir() or _looks_like_hub_id(base)):
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
            warnings.warn(
                f"obs column {c!r} has {len(values)} distinct values; its words are not added "
                "to the tokenizer.",
                stacklevel=3,
            )
    return out
