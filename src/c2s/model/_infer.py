"""Inference kernels: label scoring with a shared prompt cache, trie-constrained decoding,
free decoding, and pooled embeddings (gene-constrained generation is in ``_generate``).

Every batch is sorted by length, left-padded with position ids counting real tokens only (so
a sequence's result does not depend on its batch-mates), and run under
``torch.inference_mode``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from c2s._errors import C2SError
from c2s._logging import progress
from c2s.train._encode import IGNORE, encode_texts


def length_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (longest first)."""
    if batch_size < 1:
        raise C2SError("batch_size must be at least 1.")
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int, device) -> dict:
    """``input_ids``, ``attention_mask`` and ``position_ids`` (0 at each first real token)."""
    import torch

    n = max(len(s) for s in seqs)
    ids = np.full((len(seqs), n), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), n), dtype=np.int64)
    for i, s in enumerate(seqs):
        if len(s):
            ids[i, n - len(s) :] = s
            mask[i, n - len(s) :] = 1
    pos = np.maximum(mask.cumsum(1) - 1, 0)
    return {
        "input_ids": torch.from_numpy(ids).to(device),
        "attention_mask": torch.from_numpy(mask).to(device),
        "position_ids": torch.from_numpy(pos).to(device),
    }


def _repeat_cache(cache, n: int):
    """A new cache with every batch row repeated ``n`` times (the original is untouched)."""
    from transformers import DynamicCache

    layers = [
        (layer.keys.repeat_interleave(n, 0), layer.values.repeat_interleave(n, 0))
        for layer in cache.layers
    ]
    return DynamicCache(ddp_cache_data=layers)


class _Preamble:
    """The key/value cache of the tokens every prompt starts with (the template's constant
    opening), computed once and shared by every batch. Shorter than ``min_len`` tokens it is
    not worth a separate pass and ``n`` is 0."""

    def __init__(self, lm, seqs: Sequence[Sequence[int]], dev, min_len: int = 16):
        import torch

        n = _common_prefix(seqs, min(len(s) for s in seqs) - 1)  # each keeps a token of its own
        self.n = n if n >= min_len else 0
        self.cache = None
        if self.n:
            ids = torch.as_tensor([list(seqs[0][: self.n])], device=dev)
            self.cache = lm(input_ids=ids, use_cache=True, logits_to_keep=1).past_key_values

    def cache_for(self, batch: int):
        """A fresh cache holding the preamble for ``batch`` rows (None without one).

        Cache layers replace their tensors when they grow (never write into them), so shallow
        copies whose tensors are broadcast views of the preamble's are enough."""
        import copy

        if not self.n:
            return None
        c = copy.copy(self.cache)
        c.layers = [copy.copy(layer) for layer in self.cache.layers]
        for layer in c.layers:
            layer.keys = layer.keys.expand(batch, -1, -1, -1)
            layer.values = layer.values.expand(batch, -1, -1, -1)
        return c


# -- scoring -----------------------------------------------------------------------------------
@dataclass
class _Scored:
    prefix: list[int]  # tokens shared by every candidate (the prompt)
    conts: list[list[int]]  # per candidate: the tokens after the prefix
    first: list[int]  # per candidate: index in cont of the first scored token


def _split_exact(tokenizer, prompts: Sequence[str], answers: Sequence[str]) -> list[_Scored]:
    """:func:`_split_candidates` by encoding every prompt-answer pair."""
    n = len(answers)
    encs = encode_texts(
        tokenizer, [p for p in prompts for _ in answers], list(answers) * len(prompts)
    )
    out = []
    for i in range(len(prompts)):
        mine = encs[i * n : (i + 1) * n]
        ids = [e["input_ids"] for e in mine]
        bounds = [next(t for t, v in enumerate(e["labels"]) if v != IGNORE) for e in mine]
        k = _common_prefix(ids, min(bounds))  # within the prompt part
        if k == 0:
            raise C2SError("The prompt and its answers share no tokens; cannot score them.")
        out.append(_Scored(ids[0][:k], [s[k:] for s in ids], [b - k for b in bounds]))
    return out


_LAST_WORD = re.compile(r"\s+\S+\s*$")


def _common_prefix(seqs: Sequence[Sequence[int]], limit: int) -> int:
    """Length of the prefix all ``seqs`` share, at most ``limit``."""
    n = limit
    for s in seqs[1:]:
        m = 0
        while m < n and s[m] == seqs[0][m]:
            m += 1
        n = m
    return n


def _common_suffix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def _split_candidates(
    tokenizer, prompts: Sequence[str], answers: Sequence[str], ids=None
) -> list[_Scored]:
    """For each prompt: the tokens it shares with all its candidate answers, and each
    answer's remaining tokens (plus EOS), encoded exactly as in training.

    Encoding every prompt-answer pair costs (prompts x answers) tokenizations. Instead the
    prompts are grouped by their last word (the only text an answer's tokens can merge
    with), the answers are encoded once per group after that word alone, and each prompt's
    own tokens supply the rest. A group whose first and last prompts do not come out exactly
    as the full encoding, or a prompt whose last tokens differ from its group's, is encoded
    pair by pair instead. ``ids``: the prompts' tokens, if the caller has them already.
    """
    if ids is None:
        ids = tokenizer(list(prompts))["input_ids"]
    groups: dict[str | None, list[int]] = {}
    for i, p in enumerate(prompts):
        m = _LAST_WORD.search(p)
        groups.setdefault(p[m.start() :] if m and m.start() > 0 else None, []).append(i)
    out: list[_Scored | None] = [None] * len(prompts)
    slow: list[int] = []
    for tail, rows in groups.items():
        if tail is None or len(rows) < 3:
            slow += rows
            continue
        try:
            t = _split_exact(tokenizer, [tail], answers)[0]
        except C2SError:  # the tail alone shares no token with its answers
            slow += rows
            continue
        t_ids = tokenizer(tail)["input_ids"]
        drop = len(t_ids) - len(t.prefix)  # tail tokens that merge into the answers
        checks = _split_exact(tokenizer, [prompts[rows[0]], prompts[rows[-1]]], answers)
        stable = min(_common_suffix(t_ids, ids[r]) for r in (rows[0], rows[-1]))

        def fast(r, t=t, drop=drop):
            return _Scored(ids[r][: len(ids[r]) - drop], t.conts, t.first)

        ok = drop >= 0 and stable > drop
        ok = ok and all(fast(r) == c for r, c in zip((rows[0], rows[-1]), checks, strict=True))
        for r in rows:
            if ok and ids[r][len(ids[r]) - stable :] == t_ids[len(t_ids) - stable :]:
                out[r] = fast(r)
            else:
                slow.append(r)
    if slow:
        for r, part in zip(
            slow, _split_exact(tokenizer, [prompts[r] for r in slow], answers), strict=True
        ):
            out[r] = part
    return out  # type: ignore[return-value]


class _Tree:
    """The continuation block shared by prompts with the same candidate tokens: every
    candidate's continuation (all but its last token) side by side, and which positions
    score which tokens."""

    def __init__(self, part: _Scored):
        conts, first = part.conts, part.first
        self.ids = np.fromiter((t for c in conts for t in c[:-1]), dtype=np.int64)
        self.seg = np.repeat(np.arange(len(conts)), [len(c) - 1 for c in conts])
        self.pos = np.concatenate([np.arange(len(c) - 1) for c in conts] or [np.zeros(0, int)])
        # Token t of candidate j is predicted by the prompt's last token (t = 0), else by the
        # block position of token t - 1: ``src`` counts from the prompt's last token.
        src, tok, cand, at = [], [], [], 0
        for j, c in enumerate(conts):
            for t in range(first[j], len(c)):
                src.append(0 if t == 0 else at + t)
                tok.append(c[t])
                cand.append(j)
            at += len(c) - 1
        self.src = np.asarray(src, dtype=np.int64)
        self.tok = np.asarray(tok, dtype=np.int64)
        self.cand = np.asarray(cand, dtype=np.int64)


def _tree_batch(parts: list[_Scored], trees: list[_Tree], pad_id: int, skip: int = 0):
    """One sequence per prompt: its tokens after the first ``skip`` (a cached preamble), then
    its candidates' continuation block; a mask lets each continuation see the prompt and its
    own earlier tokens only, and position ids restart after the prompt for each one. Rows are
    left-padded; the mask lets every row see the preamble.

    Returns numpy ``ids``, ``pos``, the ``allowed`` mask (B, L, skip + L) and each row's index
    of its last prompt token.
    """
    heads = [np.asarray(p.prefix[skip:], dtype=np.int64) for p in parts]
    lens = [len(h) + len(t.ids) for h, t in zip(heads, trees, strict=True)]
    B, L = len(parts), max(lens)
    ids = np.full((B, L), pad_id, dtype=np.int64)
    pos = np.zeros((B, L), dtype=np.int64)
    seg = np.full((B, L), -2, dtype=np.int64)  # -2 padding, -1 prompt, j candidate
    last = np.empty(B, dtype=np.int64)
    for b, (h, t) in enumerate(zip(heads, trees, strict=True)):
        o = L - lens[b]
        P = skip + len(h)
        ids[b, o : o + len(h)], ids[b, o + len(h) :] = h, t.ids
        pos[b, o : o + len(h)], pos[b, o + len(h) :] = np.arange(skip, P), P + t.pos
        seg[b, o : o + len(h)], seg[b, o + len(h) :] = -1, t.seg
        last[b] = o + len(h) - 1
    q, k = seg[:, :, None], seg[:, None, :]
    allowed = np.tri(L, dtype=bool)[None] & (k != -2) & ((k == -1) | (k == q))
    allowed |= np.eye(L, dtype=bool)[None]  # padding rows see themselves (no NaN)
    if skip:
        allowed = np.concatenate([np.ones((B, L, skip), dtype=bool), allowed], 2)
    return ids, pos, allowed, last


def score_answers(
    model,
    prompts: Sequence[str],
    answers: Sequence[str],
    *,
    batch_size: int = 8,
    max_pairs: int = 512,
    progress_bar: bool | None = None,
    prompt_ids=None,
) -> np.ndarray:
    """Log-likelihood of each answer (its tokens and EOS) after each prompt.

    The prompt runs once per cell: with SDPA or eager attention, every candidate's tokens
    follow it in the same sequence under a tree-shaped mask (one forward pass per batch);
    otherwise the prompt's key/value cache is repeated for the candidates (in chunks of at
    most ``max_pairs`` prompt-answer pairs). ``prompt_ids``: the prompts' tokens, if known.

    Returns
    -------
    ``(n_prompts, n_answers)`` float64 array of summed log-probabilities.
    """
    if not answers:
        raise C2SError("No candidate answers to score (the label set is empty).")
    parts = _split_candidates(model.tokenizer, prompts, answers, prompt_ids)
    impl = getattr(model.model.config, "_attn_implementation", None)
    if impl in ("sdpa", "eager"):
        return _score_tree(model, parts, len(answers), batch_size, impl == "eager", progress_bar)
    return _score_cached(model, parts, len(answers), batch_size, max_pairs, progress_bar)


def _score_tree(model, parts, n_ans, batch_size, float_mask, progress_bar) -> np.ndarray:
    import torch

    tok, lm, dev = model.tokenizer, model.model, model.device
    dtype = next(lm.parameters()).dtype
    out = np.empty((len(parts), n_ans))
    sizes = [len(p.prefix) + sum(len(c) - 1 for c in p.conts) for p in parts]
    trees: dict[int, _Tree] = {}  # prompts of one group share their candidates' tokens
    with torch.inference_mode():
        pre = _Preamble(lm, [p.prefix for p in parts], dev)
        for rows in progress(
            length_batches(sizes, batch_size), desc="scoring", unit="batch", enabled=progress_bar
        ):
            sub = [parts[i] for i in rows]
            tr = [trees.get(id(p.conts)) or trees.setdefault(id(p.conts), _Tree(p)) for p in sub]
            ids, pos, allowed, last = _tree_batch(sub, tr, tok.pad_token_id, skip=pre.n)
            mask = torch.from_numpy(allowed)[:, None]
            if float_mask:  # eager attention adds its mask
                mask = torch.zeros(mask.shape, dtype=dtype).masked_fill_(
                    ~mask, torch.finfo(dtype).min
                )
            L = ids.shape[1]
            keep = int(L - last.min())  # from the earliest last prompt token to the end
            logits = lm(
                input_ids=torch.from_numpy(ids).to(dev),
                attention_mask=mask.to(dev),
                position_ids=torch.from_numpy(pos).to(dev),
                past_key_values=pre.cache_for(len(rows)),
                logits_to_keep=keep,
            ).logits.float()
            logp = torch.log_softmax(logits, -1)  # (B, keep, V); faster than logsumexp on CPU
            base = L - keep
            bi = np.concatenate([np.full(len(t.src), b) for b, t in enumerate(tr)])
            pi = np.concatenate([last[b] - base + t.src for b, t in enumerate(tr)])
            ti = np.concatenate([t.tok for t in tr])
            cj = np.concatenate([b * n_ans + t.cand for b, t in enumerate(tr)])
            idx = [torch.from_numpy(x).to(dev) for x in (bi, pi, ti)]
            lp = logp[idx[0], idx[1], idx[2]]
            totals = torch.zeros(len(rows) * n_ans, dtype=torch.float64, device=dev)
            totals.index_add_(0, torch.from_numpy(cj).to(dev), lp.double())
            out[rows] = totals.view(len(rows), n_ans).cpu().numpy()
    return out


def _score_cached(model, parts, n_ans, batch_size, max_pairs, progress_bar) -> np.ndarray:
    import torch

    tok, lm = model.tokenizer, model.model
    dev = model.device
    out = np.empty((len(parts), n_ans))
    chunk = max(1, max_pairs // max(1, min(batch_size, len(parts))))
    batches = length_batches([len(x.prefix) for x in parts], batch_size)
    with torch.inference_mode():
        for rows in progress(batches, desc="scoring", unit="batch", enabled=progress_bar):
            enc = left_pad([parts[i].prefix for i in rows], tok.pad_token_id, dev)
            res = lm(**enc, use_cache=True, logits_to_keep=1)
            last = torch.log_softmax(res.logits[:, -1].float(), -1)  # (B, V): first tokens
            B = len(rows)
            for a0 in range(0, n_ans, chunk):
                a1 = min(n_ans, a0 + chunk)
                C = a1 - a0
                conts = [parts[i].conts[j] for i in rows for j in range(a0, a1)]
                Lc = max(len(c) for c in conts)
                cont = torch.full((B * C, Lc), tok.pad_token_id, dtype=torch.long)
                cmask = torch.zeros((B * C, Lc), dtype=torch.long)
                for r, c in enumerate(conts):
                    cont[r, : len(c)] = torch.as_tensor(c)
                    cmask[r, : len(c)] = 1
                cont, cmask = cont.to(dev), cmask.to(dev)
                pmask = enc["attention_mask"].repeat_interleave(C, 0)
                start = pmask.sum(1, keepdim=True)
                pos = start + torch.arange(Lc, device=dev)[None, :]
                # token t of a continuation is predicted by the prompt (t = 0) or by token t - 1,
                # so the last token is never fed
                first_tok = last.repeat_interleave(C, 0).gather(1, cont[:, :1])
                if Lc > 1:
                    logits = lm(
                        input_ids=cont[:, :-1],
                        attention_mask=torch.cat([pmask, cmask[:, :-1]], 1),
                        position_ids=pos[:, :-1],
                        past_key_values=_repeat_cache(res.past_key_values, C),
                        use_cache=True,
                    ).logits.float()
                    nxt = torch.log_softmax(logits, -1).gather(2, cont[:, 1:, None])[:, :, 0]
                    tok_lp = torch.cat([first_tok, nxt], 1)  # (B*C, Lc)
                else:
                    tok_lp = first_tok
                firsts = torch.as_tensor(
                    [parts[i].first[j] for i in rows for j in range(a0, a1)], device=dev
                )
                t = torch.arange(Lc, device=dev)[None, :]
                use = (t >= firsts[:, None]) & (cmask == 1)
                totals = (tok_lp * use).sum(1).view(B, C).double().cpu().numpy()
                out[rows, a0:a1] = totals
    return out


# -- constrained label decoding ---------------------------------------------------------------
def decode_constrained(
    model,
    prompts: Sequence[str],
    answers: Sequence[str],
    *,
    batch_size: int = 8,
    progress_bar: bool | None = None,
    prompt_ids=None,
) -> list[int]:
    """Greedy decoding restricted to a trie of the candidate answers (tokens and EOS).

    Returns the index of the answer each prompt's decoding ends in. Decoding stops as soon as
    one candidate is left (its remaining tokens are the only ones allowed), so labels with
    distinct first tokens take a single forward pass.
    """
    import torch

    tok, lm, dev = model.tokenizer, model.model, model.device
    parts = _split_candidates(tok, prompts, answers, prompt_ids)
    result = [0] * len(prompts)
    batches = length_batches([len(x.prefix) for x in parts], batch_size)
    with torch.inference_mode():
        pre = _Preamble(lm, [p.prefix for p in parts], dev)
        for rows in progress(batches, desc="decoding", unit="batch", enabled=progress_bar):
            enc = left_pad([parts[i].prefix[pre.n :] for i in rows], tok.pad_token_id, dev)
            if pre.n:
                ones = torch.ones((len(rows), pre.n), dtype=torch.long, device=dev)
                enc["attention_mask"] = torch.cat([ones, enc["attention_mask"]], 1)
                enc["position_ids"] = enc["position_ids"] + pre.n
            res = lm(
                **enc, past_key_values=pre.cache_for(len(rows)), use_cache=True, logits_to_keep=1
            )
            cache, logits = res.past_key_values, res.logits[:, -1]
            mask, pos = enc["attention_mask"], enc["position_ids"][:, -1:]
            alive = [list(range(len(answers))) for _ in rows]  # candidates still matching
            step = 0
            done = [False] * len(rows)
            while not all(done):
                nxt = []
                for b, i in enumerate(rows):
                    if done[b]:
                        nxt.append(tok.pad_token_id)
                        continue
                    conts = parts[i].conts
                    options = {conts[j][step] for j in alive[b] if step < len(conts[j])}
                    allowed = torch.as_tensor(sorted(options), device=dev)
                    choice = int(allowed[logits[b, allowed].argmax()])
                    alive[b] = [
                        j for j in alive[b] if step < len(conts[j]) and conts[j][step] == choice
                    ]
                    finished = [j for j in alive[b] if len(conts[j]) == step + 1]
                    if finished:
                        result[i], done[b] = finished[0], True
                    elif len(alive[b]) == 1:  # the rest of the path is forced: stop here
                        result[i], done[b] = alive[b][0], True
                    nxt.append(choice)
                step += 1
                if all(done):
                    break
                ids = torch.as_tensor(nxt, device=dev)[:, None]
                mask = torch.cat(
                    [mask, torch.as_tensor([[0 if d else 1] for d in done], device=dev)], 1
                )
                pos = pos + 1
                out = lm(
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=pos,
                    past_key_values=cache,
                    use_cache=True,
                )
                cache, logits = out.past_key_values, out.logits[:, -1]
    return result


def generate_free(
    model,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 32,
    batch_size: int = 8,
    temperature: float = 0.0,
    top_p: float | None = None,
    seed: int = 0,
    progress_bar: bool | None = None,
    backend: str = "hf",
) -> list[str]:
    """Plain decoding (greedy unless ``temperature > 0``), stopping at EOS; the new text.

    ``backend="vllm"`` hands the prompts to vLLM (CUDA only; for high-throughput free text
    such as descriptions). Gene-constrained generation always runs here, token by token.
    """
    import torch

    if backend == "vllm":
        return _generate_vllm(model, prompts, max_new_tokens, temperature, top_p, seed)
    if backend != "hf":
        raise C2SError(f"backend must be 'hf' or 'vllm', not {backend!r}.")
    tok, lm, dev = model.tokenizer, model.model, model.device
    ids = [tok(p)["input_ids"] for p in prompts]
    out = [""] * len(prompts)
    torch.manual_seed(seed)
    with torch.inference_mode():
        for rows in progress(
            length_batches([len(x) for x in ids], batch_size),
            desc="generating",
            unit="batch",
            enabled=progress_bar,
        ):
            enc = left_pad([ids[i] for i in rows], tok.pad_token_id, dev)
            enc.pop("position_ids")
            kw = {"do_sample": temperature > 0}
            if temperature > 0:
                kw["temperature"] = temperature
                if top_p:
                    kw["top_p"] = top_p
            gen = lm.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id,
                **kw,
            )
            new = gen[:, enc["input_ids"].shape[1] :]
            for b, i in enumerate(rows):
                out[i] = tok.decode(new[b], skip_special_tokens=True)
    return out


def _generate_vllm(model, prompts, max_new_tokens, temperature, top_p, seed) -> list[str]:
    import importlib.util

    import torch

    if not torch.cuda.is_available() or importlib.util.find_spec("vllm") is None:
        raise C2SError("The vLLM backend needs a CUDA GPU and vllm (pip install 'c2s[gpu]').")
    if not model.name_or_path or model.is_peft:
        raise C2SError("vLLM loads models from disk: save the model (merged) and load it by path.")
    from vllm import LLM, SamplingParams

    llm = LLM(model=model.name_or_path, dtype="auto", seed=seed)
    params = SamplingParams(
        temperature=temperature, top_p=top_p or 1.0, max_tokens=max_new_tokens, seed=seed
    )
    return [o.outputs[0].text for o in llm.generate(list(prompts), params)]


# -- embeddings -------------------------------------------------------------------------------
POOLING = ("genes", "prompt", "last")


def embed_prompts(
    model,
    prompts: Sequence[str],
    spans: Sequence[tuple[int, int]] | None = None,
    *,
    pool: str = "genes",
    layer: int = -1,
    batch_size: int = 8,
    progress_bar: bool | None = None,
) -> np.ndarray:
    """Pooled hidden states of ``layer``: the mean over the tokens inside each prompt's
    character span ``spans[i]`` (``pool="genes"``: the cell sentence), over all prompt tokens
    (``"prompt"``), or the last token (``"last"``). Padding is never included.

    Returns ``(n_prompts, hidden_size)`` float32.
    """
    import torch

    if pool not in POOLING:
        raise C2SError(f"pool must be one of {POOLING}, not {pool!r}.")
    if pool == "genes" and spans is None:
        raise C2SError("pool='genes' needs the character span of each cell sentence.")
    tok, lm, dev = model.tokenizer, model.model, model.device
    enc = tok(list(prompts), return_offsets_mapping=True)
    weights = []
    for i, offs in enumerate(enc["offset_mapping"]):
        n = len(offs)
        if pool == "genes":
            a, b = spans[i]
            w = [1.0 if (e > a and s < b and e > s) else 0.0 for s, e in offs]
            if not any(w):
                raise C2SError(f"Prompt {i} has no tokens inside its cell sentence.")
        elif pool == "prompt":
            w = [1.0] * n
        else:
            w = [0.0] * (n - 1) + [1.0]
        weights.append(w)
    n_layers = lm.config.num_hidden_layers
    if not -n_layers - 1 <= layer <= n_layers:
        raise C2SError(f"layer must lie in [-{n_layers + 1}, {n_layers}] for this model.")
    out = None
    ids = enc["input_ids"]
    with torch.inference_mode():
        batches = length_batches([len(x) for x in ids], batch_size)
        for rows in progress(batches, desc="embedding", unit="batch", enabled=progress_bar):
            batch = left_pad([ids[i] for i in rows], tok.pad_token_id, dev)
            res = lm(**batch, output_hidden_states=True, logits_to_keep=1)
            h = res.hidden_states[layer].float()  # (B, L, H)
            L = h.shape[1]
            w = torch.zeros((len(rows), L), device=dev)
            for b, i in enumerate(rows):
                w[b, L - len(weights[i]) :] = torch.as_tensor(weights[i], device=dev)
            pooled = (h * w[:, :, None]).sum(1) / w.sum(1, keepdim=True)
            if out is None:
                out = np.zeros((len(prompts), h.shape[-1]), dtype=np.float32)
            out[rows] = pooled.cpu().numpy()
    return out


# -- gene-by-gene attention --------------------------------------------------------------------------
def gene_attention(
    model,
    prompt: str,
    gene_spans: Sequence[tuple[int, int]],
    *,
    layer: int = -1,
) -> np.ndarray:
    """Attention between the genes of one prompt's cell sentence, from one layer.

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
    if not -n_layers <= layer < n_layers:
        raise C2SError(f"layer must lie in [-{n_layers}, {n_layers - 1}] for this model.")
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
    att = out.attentions[layer][0].float().mean(0).cpu().numpy()  # (T, T)
    k = len(gene_spans)
    onehot = np.zeros((len(offs), k), dtype=np.float32)
    onehot[owner >= 0, owner[owner >= 0]] = 1.0
    summed = onehot.T @ att @ onehot  # (k, k): sum over query tokens and key tokens
    per_gene = np.maximum(onehot.sum(0), 1.0)
    return (summed / per_gene[:, None]).astype(np.float32)
