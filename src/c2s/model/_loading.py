"""What goes wrong loading a model's files, said once and plainly: a hub that cannot be
reached, weights pickled with more than tensors, weights of another model's shape."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from pathlib import Path

from c2s._errors import C2SError
from c2s._logging import get_logger

log = get_logger(__name__)

_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MISMATCH = re.compile(r"^\s*(\S.*?)\s*\|\s*MISMATCH\s*\|.*?ckpt: (.+?) vs model:\s*(.+?)\s*$")
# The files a repo may have at its root that say it is a model (or a LoRA adapter).
_ROOT_FILES = ("config.json", "adapter_config.json")


def adapter_base(adapter: Path) -> str:
    """The base model an adapter directory names in its adapter_config.json."""
    try:
        base = json.loads(adapter.read_text()).get("base_model_name_or_path")
    except (ValueError, AttributeError) as e:
        raise C2SError(f"Cannot read {adapter}: it is not a JSON object ({e}).") from e
    if not isinstance(base, str) or not base:
        raise C2SError(f"{adapter} names no base model (base_model_name_or_path).")
    return base


def hub_cache_only(name: str, revision: str | None = None) -> bool:
    """Whether hub repo ``name`` must be loaded from the local cache alone: True when the
    hub cannot be reached (offline mode, no network) but the cache has the repo. Refused
    when neither: one quick request, where the Hugging Face clients would retry for a
    minute and more."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError

    if constants.HF_HUB_OFFLINE:
        why = "HF_HUB_OFFLINE is set"
    else:
        try:
            get_hf_file_metadata(hf_hub_url(name, _ROOT_FILES[0], revision=revision))
            return False
        except HfHubHTTPError as e:  # the hub answered: the loader says what is missing
            status = getattr(e.response, "status_code", None)
            if status is not None and status < 500 and status != 429:
                return False
            why = f"HTTP {status}"
        except Exception as e:  # connection refused, DNS, timeout: the network is the matter
            why = " ".join(str(e).split()) or type(e).__name__
    if any(
        isinstance(try_to_load_from_cache(name, f, revision=revision), str) for f in _ROOT_FILES
    ):
        log.info("The hub is out of reach (%s); loading %s from the local cache.", why, name)
        return True
    raise C2SError(
        f"Cannot reach the Hugging Face Hub to download {name!r} ({why}), and the local cache "
        f"({constants.HF_HUB_CACHE}) does not have it; download it on a machine with a network "
        "(or set HF_HOME to a cache that has it) and pass the local directory."
    )


@contextlib.contextmanager
def held_load_report():
    """Hold back transformers' weight-loading report (a table it logs before raising on
    weights of another shape) and yield the held texts; a load that succeeds logs it after
    all, since missing or unexpected weights are worth a warning."""
    logger = logging.getLogger("transformers.modeling_utils")
    held: list[logging.LogRecord] = []

    def hold(record: logging.LogRecord) -> bool:
        if "LOAD REPORT" in str(record.msg):
            held.append(record)
            return False
        return True

    logger.addFilter(hold)
    try:
        yield held
    except BaseException as e:
        logger.removeFilter(hold)
        if not _mismatch(e):  # the report is not said otherwise
            for record in held:
                logger.handle(record)
        raise
    logger.removeFilter(hold)
    for record in held:
        logger.handle(record)


def _mismatch(error: BaseException) -> bool:
    text = str(error)
    return isinstance(error, RuntimeError) and (
        "ignore_mismatched_sizes" in text or "size mismatch" in text
    )


def loading_error(name: str, error: Exception, held=()) -> C2SError | None:
    """The C2SError that says why ``error`` stopped loading the model ``name``, or None when
    it is none of the cases known here (then it is a bug to report)."""
    import pickle

    text = " ".join(str(error).split())
    if "Weights only load failed" in text:
        fix = "Re-save them as safetensors (save_pretrained) where you trust their source."
        return unsafe_pickle(f"The weights of {name!r} are", error, fix)
    if _mismatch(error):
        first = _first_mismatch(held) or text[:200]
        return C2SError(
            f"The weights in {name!r} do not fit this model's config (config.json): e.g. "
            f"{first}. The weights are another model's, or config.json was changed; restore "
            "the directory as it was saved."
        )
    if isinstance(error, pickle.UnpicklingError) or (
        isinstance(error, RuntimeError) and "PytorchStreamReader" in text
    ):
        return C2SError(f"The weights of {name!r} are damaged ({text[:200]}); restore them.")
    return None


def _first_mismatch(held) -> str | None:
    for record in held:
        for line in _ANSI.sub("", record.getMessage()).splitlines():
            m = _MISMATCH.match(line)
            if m:
                key, ckpt, model = m.groups()
                return f"{key} is {_shape(ckpt)} in the weights but {_shape(model)} in the config"
    return None


def _shape(text: str) -> str:
    """``torch.Size([64, 256])`` -> ``64 x 256``."""
    return " x ".join(re.findall(r"\d+", text)) or text


def unsafe_pickle(what: str, error: Exception, fix: str) -> C2SError:
    """``what`` ("X is", "X are") a pickle that torch's weights-only loading refuses: say
    so, which object it would have had to build, and ``fix``."""
    found = _GLOBAL.search(str(error))
    holding = f" (it would build {found.group(1)})" if found else ""
    return C2SError(
        f"{what} a pickle holding more than tensors{holding}, which torch refuses to load "
        f"safely: c2s loads only safetensors or weights-only pickles. {fix}"
    )


def check_torch_file(path: str | Path, *, numpy: bool = False, fix: str = "") -> None:
    """Load ``path`` as the Trainer does when it resumes (weights only; ``numpy``: with the
    numpy types it allows in random-number states) and refuse, naming the file, a pickle
    torch would not load safely or a damaged file."""
    import pickle

    import torch

    path = Path(path)
    allow = contextlib.nullcontext()
    if numpy:
        from transformers.trainer_pt_utils import safe_globals

        allow = safe_globals()
    try:
        with allow:
            try:  # without reading the tensors: an optimizer's state can be large
                torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as e:
                if "mmap" not in str(e):
                    raise
                torch.load(path, map_location="cpu", weights_only=True)  # the legacy format
    except pickle.UnpicklingError as e:
        if "Weights only load failed" not in str(e):
            raise C2SError(f"{path} is damaged ({' '.join(str(e).split())[:200]}). {fix}") from e
        raise unsafe_pickle(f"{path} is", e, fix) from e
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise C2SError(f"{path} is damaged ({' '.join(str(e).split())[:200]}). {fix}") from e
