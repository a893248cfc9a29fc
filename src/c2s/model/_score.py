"""Label scoring: the log-likelihood of every candidate answer after every prompt, with the
prompt run once (candidates follow it under a tree-shaped mask, or share its repeated cache)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from c2s._errors import C2SError
from c2s._logging import progress
from c2s.encoding import IGNORE, encode_texts
from c2s.model._batching import (
    Preamble,
    common_prefix,
    left_pad,
    length_batches,
    repeat_cache,
    returned_cache,
    with_cache,
)
from c2s.model._ranks import gather, share


@dataclass
class _Scored:
    prefix: list[int]  # tokens shared by every candidate (the prompt)
    conts: list[list[int]]  # per candidate: the tokens after the prefix
    first: list[int]  # per candidate: index in cont of the first scored token


def _split_exact(tokenizer, prompts: Sequence[str], answers: Sequence[str]) -> list[_Scored]:
    """:func:`split_candidates` by encoding every prompt-answer pair."""
    n = len(answers)
    encs = encode_texts(
        tokenizer, [p for p in prompts for _ in answers], list(answers) * len(prompts)
    )
    out = []
    for i in range(len(prompts)):
        mine = encs[i * n : (i + 1) * n]
        ids = [e["input_ids"] for e in mine]
        bounds = [next(t for t, v in enumerate(e["labels"]) if v != IGNORE) for e in mine]
        k = common_prefix(ids, min(bounds))  # within the prompt part
        if k == 0:
            raise C2SError("The prompt and its answers share no tokens; cannot score them.")
        out.append(_Scored(ids[0][:k], [s[k:] for s in ids], [b - k for b in bounds]))
    return out


_LAST_WORD = re.compile(r"\s+\S+\s*$")


def _common_suffix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def split_candidates(
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
    per_token: bool = False,
) -> np.ndarray:
    """Log-likelihood of each answer (its tokens and EOS) after each prompt.

    The prompt runs once per cell: with SDPA or eager attention, every candidate's tokens
    follow it in the same sequence under a tree-shaped mask (one forward pass per batch);
    otherwise the prompt's key/value cache is repeated for the candidates (in chunks of at
    most ``max_pairs`` prompt-answer pairs). ``prompt_ids``: the prompts' tokens, if known.
    ``per_token``: divide each sum by the number of tokens it covers (length normalization).

    Returns
    -------
    ``(n_prompts, n_answers)`` float64 array of summed (or, with ``per_token``, mean)
    log-probabilities.
    """
    if not answers:
        raise C2SError("No candidate answers to score (the label set is empty).")
    parts = split_candidates(model.tokenizer, prompts, answers, prompt_ids)
    impl = getattr(model.model.config, "_attn_implementation", None)
    if impl in ("sdpa", "eager"):
        out = _score_tree(model, parts, len(answers), batch_size, impl == "eager", progress_bar)
    else:
        out = _score_cached(model, parts, len(answers), batch_size, max_pairs, progress_bar)
    if per_token:
        out /= [[len(c) - f for c, f in zip(p.conts, p.first, strict=True)] for p in parts]
    return out


def _score_tree(model, parts, n_ans, batch_size, float_mask, progress_bar) -> np.ndarray:
    import torch

    tok, lm, dev = model.tokenizer, model.model, model.device
    dtype = next(lm.parameters()).dtype
    out = np.empty((len(parts), n_ans))
    sizes = [len(p.prefix) + sum(len(c) - 1 for c in p.conts) for p in parts]
    trees: dict[int, _Tree] = {}  # prompts of one group share their candidates' tokens
    with torch.inference_mode():
        pre = Preamble(lm, [p.prefix for p in parts], dev)
        batches = share(length_batches(sizes, batch_size))
        for rows in progress(batches, desc="scoring", unit="batch", enabled=progress_bar):
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
                **with_cache(lm, pre.cache_for(len(rows))),
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
    return gather(out, batches)


def _score_cached(model, parts, n_ans, batch_size, max_pairs, progress_bar) -> np.ndarray:
    import torch

    tok, lm = model.tokenizer, model.model
    dev = model.device
    out = np.empty((len(parts), n_ans))
    chunk = max(1, max_pairs // max(1, min(batch_size, len(parts))))
    batches = share(length_batches([len(x.prefix) for x in parts], batch_size))
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
                        **with_cache(lm, repeat_cache(returned_cache(res), C)),
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
    return gather(out, batches)
