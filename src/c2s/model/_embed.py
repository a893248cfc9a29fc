"""Hidden states per cell: pooled embeddings and gene-by-gene attention."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from c2s._errors import C2SError
from c2s._logging import progress
from c2s.model._batching import left_pad, length_batches
from c2s.model._ranks import gather, share

POOLING = ("genes", "prompt", "last")


_CHUNK = 1024  # prompts tokenized at a time


def embed_prompts(
    model,
    prompts: Sequence[str],
    spans: Sequence[tuple[int, int]] | None = None,
    *,
    pool: str = "genes",
    hidden_layer: int = -1,
    batch_size: int = 8,
    progress_bar: bool | None = None,
) -> np.ndarray:
    """Pooled hidden states of layer ``hidden_layer`` (0: the token embeddings, -1: the last):
    the mean over the tokens inside each prompt's character span ``spans[i]``
    (``pool="genes"``: the cell sentence), over all prompt tokens (``"prompt"``), or the last
    token (``"last"``). Padding is never included.

    Returns ``(n_prompts, hidden_size)`` float32.
    """
    import torch

    if pool not in POOLING:
        raise C2SError(f"pool must be one of {POOLING}, not {pool!r}.")
    if pool == "genes" and spans is None:
        raise C2SError("pool='genes' needs the character span of each cell sentence.")
    tok, lm, dev = model.tokenizer, model.model, model.device
    # Tokenized in chunks and kept as compact arrays (token ids, and which tokens are pooled):
    # the tokenizer's per-token offset lists for a whole atlas would not fit in memory.
    ids, weights = [], []
    for c0 in range(0, len(prompts), _CHUNK):
        enc = tok(list(prompts[c0 : c0 + _CHUNK]), return_offsets_mapping=True)
        for j, (tid, offs) in enumerate(zip(enc["input_ids"], enc["offset_mapping"], strict=True)):
            o = np.asarray(offs, dtype=np.int64).reshape(-1, 2)
            s, e = o[:, 0], o[:, 1]
            if pool == "genes":
                a, b = spans[c0 + j]
                w = (e > a) & (s < b) & (e > s)
                if not w.any():
                    raise C2SError(f"Prompt {c0 + j} has no tokens inside its cell sentence.")
            elif pool == "prompt":
                w = np.ones(len(o), dtype=bool)
            else:
                w = np.zeros(len(o), dtype=bool)
                w[-1] = True
            ids.append(np.asarray(tid, dtype=np.int32))
            weights.append(w)
        del enc
    n_layers = lm.config.num_hidden_layers
    if not -n_layers - 1 <= hidden_layer <= n_layers:
        raise C2SError(f"hidden_layer must lie in [-{n_layers + 1}, {n_layers}] for this model.")
    hidden = lm.get_input_embeddings().weight.shape[1]  # every layer's width
    out = np.zeros((len(prompts), hidden), dtype=np.float32)
    with torch.inference_mode():
        batches = share(length_batches([len(x) for x in ids], batch_size))
        for rows in progress(batches, desc="embedding", unit="batch", enabled=progress_bar):
            batch = left_pad([ids[i] for i in rows], tok.pad_token_id, dev)
            res = lm(**batch, output_hidden_states=True, logits_to_keep=1)
            h = res.hidden_states[hidden_layer].float()  # (B, L, H)
            L = h.shape[1]
            w = torch.zeros((len(rows), L), device=dev)
            for b, i in enumerate(rows):
                w[b, L - len(weights[i]) :] = torch.as_tensor(weights[i], device=dev)
            pooled = (h * w[:, :, None]).sum(1) / w.sum(1, keepdim=True)
            out[rows] = pooled.cpu().numpy()
    return gather(out, batches)


def gene_attention(
    model,
    prompt: str,
    gene_spans: Sequence[tuple[int, int]],
    *,
    hidden_layer: int = -1,
) -> np.ndarray:
    """Attention between the genes of one prompt's cell sentence, from layer ``hidden_layer``.

    Token-level attention (mean over heads) is aggregated to genes: entry ``[i, j]`` is the
    attention that gene ``i``'s tokens (averaged) pay to gene ``j``'s tokens (summed). Causal
    models attend only backwards, so the matrix is lower-triangular.

    Returns a ``(n_genes, n_genes)`` float32 array.
    """
    import torch

    tok, lm, dev = model.tokenizer, model.model, model.device
    enc = tok(prompt, return_offsets_mapping=True)
    offs = enc["offset_mapping"]
    owner = np.full(len(offs), -1)
    for t, (s, e) in enumerate(offs):
        for g, (a, b) in enumerate(gene_spans):
            if e > a and s < b and e > s:
                owner[t] = g
                break
    n_layers = lm.config.num_hidden_layers
    if not -n_layers <= hidden_layer < n_layers:
        raise C2SError(f"hidden_layer must lie in [-{n_layers}, {n_layers - 1}] for this model.")
    previous = getattr(lm.config, "_attn_implementation", None)
    if previous != "eager":
        lm.set_attn_implementation("eager")  # only eager attention returns the weights
    try:
        with torch.inference_mode():
            out = lm(
                torch.as_tensor([enc["input_ids"]], device=dev),
                output_attentions=True,
                logits_to_keep=1,
            )
    finally:
        if previous and previous != "eager":
            lm.set_attn_implementation(previous)
    att = out.attentions[hidden_layer][0].float().mean(0).cpu().numpy()  # (T, T)
    k = len(gene_spans)
    onehot = np.zeros((len(offs), k), dtype=np.float32)
    onehot[owner >= 0, owner[owner >= 0]] = 1.0
    summed = onehot.T @ att @ onehot  # (k, k): sum over query tokens and key tokens
    per_gene = np.maximum(onehot.sum(0), 1.0)
    return (summed / per_gene[:, None]).astype(np.float32)
