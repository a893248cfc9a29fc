"""Decoding text: greedy decoding restricted to candidate answers, and free decoding (with
an optional vLLM backend). Gene-constrained generation of cells is in ``_generate``."""

from __future__ import annotations

from collections.abc import Sequence

from c2s._errors import C2SError
from c2s._logging import progress
from c2s.model._batching import Preamble, left_pad, length_batches, returned_cache, with_cache
from c2s.model._ranks import gather, share
from c2s.model._score import split_candidates


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
    parts = split_candidates(tok, prompts, answers, prompt_ids)
    result = [0] * len(prompts)
    batches = share(length_batches([len(x.prefix) for x in parts], batch_size))
    with torch.inference_mode():
        pre = Preamble(lm, [p.prefix for p in parts], dev)
        for rows in progress(batches, desc="decoding", unit="batch", enabled=progress_bar):
            enc = left_pad([parts[i].prefix[pre.n :] for i in rows], tok.pad_token_id, dev)
            if pre.n:
                ones = torch.ones((len(rows), pre.n), dtype=torch.long, device=dev)
                enc["attention_mask"] = torch.cat([ones, enc["attention_mask"]], 1)
                enc["position_ids"] = enc["position_ids"] + pre.n
            res = lm(
                **enc, **with_cache(lm, pre.cache_for(len(rows))), use_cache=True, logits_to_keep=1
            )
            cache, logits = returned_cache(res), res.logits[:, -1]
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
                    **with_cache(lm, cache),
                    use_cache=True,
                )
                cache, logits = returned_cache(out), out.logits[:, -1]
    return gather(result, batches)


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
    # Sampled text follows torch's global stream, so it is split across processes only when
    # greedy (where it does not depend on the split).
    batches = length_batches([len(x) for x in ids], batch_size)
    if temperature <= 0:
        batches = share(batches)
    with torch.inference_mode():
        for rows in progress(batches, desc="generating", unit="batch", enabled=progress_bar):
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
    return gather(out, batches) if temperature <= 0 else out


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
