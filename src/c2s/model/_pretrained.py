"""Loading a model by hub id or local path, in phases: the path checked, the loading options
(device, dtype, 4-bit quantization), ``c2s_config.json`` (local, or from the hub), then the
weights (a LoRA adapter on top of its base) and the tokenizer."""

from __future__ import annotations

import re
from pathlib import Path

from c2s._errors import C2SError
from c2s._logging import peft_wrapping
from c2s._warn import warn_user
from c2s.model._config import CONFIG_FILE, C2SConfig
from c2s.model._device import check_4bit, resolve_dtype
from c2s.model._loading import adapter_base, held_load_report, hub_cache_only, loading_error

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def looks_like_hub_id(name: str) -> bool:
    """``owner/name`` of letters, digits, ``-``, ``_`` and ``.``, not an existing path."""
    return bool(_HUB_ID.fullmatch(name)) and not Path(name).exists()


def check_model_path(name: str) -> None:
    """Refuse what cannot name a model: no such directory and no hub id, a file, a directory
    without ``config.json`` or ``adapter_config.json``."""
    local = Path(name)
    if not local.exists() and not looks_like_hub_id(name):
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


def load_options(
    dev, dtype, *, load_in_4bit: bool, revision, attn_implementation, trust_remote_code: bool
) -> dict:
    """``from_pretrained`` keywords of the weights on device ``dev``: the dtype (``"auto"``
    resolved for the device), revision, attention, and 4-bit quantization (CUDA only)."""
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
    return kw


def c2s_config_of(name: str, revision: str | None) -> tuple[C2SConfig | None, bool]:
    """``(config, cache_only)``: the model's ``c2s_config.json`` (a local one, else the hub
    repo's; None without one), and whether a hub repo must be read from the local cache
    alone (the hub out of reach)."""
    local = Path(name)
    config = C2SConfig.load(local) if (local / CONFIG_FILE).exists() else None
    cache_only = not local.exists() and hub_cache_only(name, revision)
    if config is None and not local.exists():
        config = _read_remote_config(name, revision, cache_only)
    return config, cache_only


def load_weights_and_tokenizer(
    name: str, kw: dict, *, cache_only: bool, revision, trust_remote_code
):
    """The causal LM (a LoRA adapter directory on top of its base) and the tokenizer of
    ``name``; what goes wrong is said plainly (:func:`loading_error`)."""
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = Path(name) / "adapter_config.json"
    try:
        with held_load_report() as report:
            if adapter.exists():
                from peft import PeftModel

                base = adapter_base(adapter)
                base_only = looks_like_hub_id(base) and hub_cache_only(base)
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
    return model, tokenizer


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
    warn_user(
        f"Could not check {name!r} on the Hugging Face hub for a c2s_config.json "
        f"({type(error).__name__}: {error}); the defaults apply (compat prompts, 200 genes). "
        "Pass n_genes, organism and labels yourself, or load the model from a local directory.",
    )


def _cache(only: bool, model: bool = True) -> dict:
    """Loading keywords that keep transformers off the network (its adapter lookup takes
    its own: transformers 5 does not hand it ``local_files_only``)."""
    if not only:
        return {}
    return {
        "local_files_only": True,
        **({"adapter_kwargs": {"local_files_only": True}} if model else {}),
    }
