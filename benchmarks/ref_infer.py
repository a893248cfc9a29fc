"""Time the reference package's inference: cell-type prediction, embedding and generation.

Runs inside .venv-ref (``make bench-ref``) and only calls the public API of the reference
PyPI package ``cell2sentence==1.2.0``; nothing from it is reproduced here.

    .venv-ref/bin/python benchmarks/ref_infer.py DATA.h5ad MODEL_DIR WORK_DIR \
        [--n-cells N] [--n-genes 30] [--max-num-tokens M] [--batch-size 8] \
        [--sections predict,embed,generate] [--cell-types-json FILE] \
        [--gen-max-num-tokens G] [--temperature 1.0]

Before timing (not timed): ``--n-cells`` keeps the first N cells of a seeded random order
(``numpy.random.default_rng(0).permutation``), the AnnData is converted with
``CSData.adata_to_arrow`` and saved with ``CSData.csdata_from_arrow``, and
``CSModel(MODEL_DIR, ...)`` loads the tokenizer and copies the model into WORK_DIR.

What is timed, each call separately (every call reloads the model from disk itself; that
reload is inside ``seconds`` and also reported alone as ``load_s``):
  - ``predict``: ``tasks.predict_cell_types_of_data(csdata, csmodel, n_genes=N)`` with its
    defaults (greedy, up to 1024 new tokens per cell, one cell at a time); ``predict_max_tokens``:
    the same with ``max_num_tokens=M``. ``accuracy_as_returned``: the returned text without a
    trailing "." against the ``cell_type`` column of the converted dataset; ``accuracy``: the
    same on the answer only (see below);
  - ``embed``: ``tasks.embed_cells(csdata, csmodel, n_genes=N, inference_batch_size=B)``;
  - ``generate``: ``tasks.generate_cells_conditioned_on_cell_type(csmodel, cell_types, n_genes=N,
    organism="Homo sapiens", inference_batch_size=B, do_sample=True, temperature=T, top_k=0)``
    (``--temperature 0``: greedy) for the cell types of ``--cell-types-json`` (a JSON list; by
    default the sorted cell types of the data, cycled to N cells); ``generate_max_tokens``: the
    same with ``max_num_tokens=G``. Validity: the fraction of generated words (whitespace
    split, a trailing "." removed) that are genes of MODEL_DIR/c2s_config.json (or of the
    data, without it); uniqueness: the mean over cells of distinct words / words.
The reference removes the prompt from each output by string replacement of the prompt text;
when the tokenizer does not round-trip the prompt (words it maps to an unknown token, which
decoding drops), the prompt stays in the output. ``prompt_left_in`` counts those outputs; the
answer is then taken as the text after the prompt's last "Cell sentence:" (generation) or the
last ":" (prediction; every template ends with one), and the quality numbers without a
suffix are computed on that answer (``*_as_returned`` on the text as returned).
A call that raises is recorded as ``{"error": ...}`` and the other sections still run.

Prints one JSON line on stdout; everything the reference prints goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time


def _words(text: str) -> list[str]:
    out = []
    for w in text.split():
        w = w[:-1] if w.endswith(".") else w
        if w:
            out.append(w)
    return out


def _answer(text: str, marker: str) -> str:
    """The text after the prompt when the reference could not remove the prompt."""
    return text.rsplit(marker, 1)[-1] if "Cell sentence:" in text else text


def _label(text: str) -> str:
    text = text.strip()
    return text[:-1].strip() if text.endswith(".") else text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("h5ad")
    p.add_argument("model")
    p.add_argument("work")
    p.add_argument("--n-cells", type=int, default=None, help="first N cells of a seeded order")
    p.add_argument("--n-genes", type=int, default=30)
    p.add_argument("--max-num-tokens", type=int, default=None, help="also predict with this")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--sections", default="predict,embed,generate")
    p.add_argument("--cell-types-json", default=None, help="JSON list of cell types to generate")
    p.add_argument("--gen-max-num-tokens", type=int, default=None, help="also generate with this")
    p.add_argument("--temperature", type=float, default=1.0, help="0: greedy generation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=1, help="time predict and embed N times (median)")
    args = p.parse_args(argv)
    sections = [s for s in args.sections.split(",") if s]
    unknown = set(sections) - {"predict", "embed", "generate"}
    if unknown:
        p.error(f"unknown sections: {sorted(unknown)}")

    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # the reference prints progress on stdout
    os.environ.setdefault("TQDM_DISABLE", "1")
    import anndata
    import numpy as np
    import torch
    import transformers
    from cell2sentence import CSData, CSModel, tasks
    from datasets import load_from_disk

    # Every task reloads the model from disk; time that reload and note the dtype it uses.
    loads: list[dict] = []
    orig_load = transformers.AutoModelForCausalLM.from_pretrained

    def timed_load(*a, **kw):
        t = time.perf_counter()
        model = orig_load(*a, **kw)
        loads.append({"s": time.perf_counter() - t, "dtype": str(next(model.parameters()).dtype)})
        return model

    transformers.AutoModelForCausalLM.from_pretrained = timed_load

    t0 = time.perf_counter()
    os.makedirs(args.work, exist_ok=True)
    adata = anndata.read_h5ad(args.h5ad)
    all_types = sorted(map(str, adata.obs["cell_type"].unique()))
    if args.n_cells is not None and args.n_cells < adata.n_obs:
        order = np.random.default_rng(0).permutation(adata.n_obs)[: args.n_cells]
        adata = adata[order].copy()
    n = adata.n_obs
    arrow, vocab = CSData.adata_to_arrow(
        adata, random_state=0, sentence_delimiter=" ", label_col_names=["cell_type", "organism"]
    )
    csdata = CSData.csdata_from_arrow(arrow, vocab, save_dir=args.work, save_name="data")
    truth = [str(x) for x in load_from_disk(csdata.data_path)["cell_type"]]
    csmodel = CSModel(args.model, save_dir=args.work, save_name="model")
    loads.clear()  # the constructor's load is not part of any task
    config_path = os.path.join(args.model, "c2s_config.json")
    genes = None
    if os.path.exists(config_path):
        with open(config_path) as f:
            genes = json.load(f).get("genes")
    known = {str(g) for g in (genes or list(vocab))}
    if args.cell_types_json:
        with open(args.cell_types_json) as f:
            cell_types = [str(x) for x in json.load(f)]
    else:
        cell_types = [all_types[i % len(all_types)] for i in range(n)]
    prep_s = time.perf_counter() - t0

    # Warm-up (not timed), as on the c2s side: a 4-cell prediction loads torch's kernels.
    warm_arrow, warm_vocab = CSData.adata_to_arrow(
        adata[:4].copy(),
        random_state=0,
        sentence_delimiter=" ",
        label_col_names=["cell_type", "organism"],
    )
    warm = CSData.csdata_from_arrow(warm_arrow, warm_vocab, save_dir=args.work, save_name="warm")
    tasks.predict_cell_types_of_data(warm, csmodel, n_genes=args.n_genes, max_num_tokens=6)

    def run(fn, repeat=1):
        """(result, seconds, model-reload seconds, dtype) or an error dict; with ``repeat``,
        the median of that many timed calls (and the last call's result)."""
        times, load_s = [], []
        for _ in range(repeat):
            loads.clear()
            t = time.perf_counter()
            try:
                res = fn()
            except Exception as e:  # recorded, not fatal: other sections still run
                return None, {
                    "error": f"{type(e).__name__}: {e}"[:2000],
                    "seconds": time.perf_counter() - t,
                }
            times.append(time.perf_counter() - t)
            load_s.append(sum(x["s"] for x in loads))
        s = float(np.median(times))
        info = {"seconds": s, "load_s": float(np.median(load_s)), "seconds_all": times}
        if loads:
            info["dtype"] = loads[-1]["dtype"]
        return res, info

    def rate(info, count):
        if "error" not in info and info["seconds"] > 0:
            info["cells_per_s"] = count / info["seconds"]
            info["cells_per_s_without_load"] = count / max(1e-9, info["seconds"] - info["load_s"])
        return info

    out: dict = {
        "impl": "cell2sentence==1.2.0",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "device": csmodel.device,
        "n_cells": n,
        "n_genes": args.n_genes,
        "batch_size": args.batch_size,
        "prep_s": prep_s,
    }

    if "predict" in sections:
        variants = [("predict", {})]
        if args.max_num_tokens is not None:
            variants.append(("predict_max_tokens", {"max_num_tokens": args.max_num_tokens}))
        for name, extra in variants:
            preds, info = run(
                lambda extra=extra: tasks.predict_cell_types_of_data(
                    csdata, csmodel, n_genes=args.n_genes, **extra
                ),
                args.repeat,
            )
            info["max_num_tokens"] = extra.get("max_num_tokens", "default (1024)")
            if preds is not None:
                answers = [_answer(x, ":") for x in preds]
                for key, texts in (("accuracy", answers), ("accuracy_as_returned", preds)):
                    ok = [_label(a) == b for a, b in zip(texts, truth, strict=True)]
                    info[key] = float(np.mean(ok))
                info["prompt_left_in"] = sum("Cell sentence:" in x for x in preds)
                info["n_distinct_answers"] = len({_label(x) for x in answers})
                info["answer_tokens_mean"] = float(
                    np.mean([len(csmodel.tokenizer(x)["input_ids"]) for x in answers])
                )
                info["examples"] = [x[-120:] for x in preds[:3]]
            out[name] = rate(info, n)

    if "embed" in sections:
        emb, info = run(
            lambda: tasks.embed_cells(
                csdata, csmodel, n_genes=args.n_genes, inference_batch_size=args.batch_size
            ),
            args.repeat,
        )
        if emb is not None:
            info["shape"] = list(np.asarray(emb).shape)
        out["embed"] = rate(info, n)

    if "generate" in sections:
        if args.temperature > 0:
            sampling = {"do_sample": True, "temperature": args.temperature, "top_k": 0}
        else:
            sampling = {"do_sample": False}
        variants = [("generate", {})]
        if args.gen_max_num_tokens is not None:
            variants.append(("generate_max_tokens", {"max_num_tokens": args.gen_max_num_tokens}))
        for name, extra in variants:
            transformers.set_seed(args.seed)
            cells, info = run(
                lambda extra=extra: tasks.generate_cells_conditioned_on_cell_type(
                    csmodel,
                    cell_types,
                    n_genes=args.n_genes,
                    organism="Homo sapiens",
                    inference_batch_size=args.batch_size,
                    **extra,
                    **sampling,
                )
            )
            info["max_num_tokens"] = extra.get("max_num_tokens", "default (1024)")
            info["generation_kwargs"] = sampling
            if cells is not None:
                answers = [_answer(c, "Cell sentence:") for c in cells]
                for suffix, texts in (("", answers), ("_as_returned", cells)):
                    words = [_words(c) for c in texts]
                    total = sum(len(w) for w in words)
                    info["validity" + suffix] = sum(x in known for w in words for x in w) / max(
                        1, total
                    )
                    info["uniqueness" + suffix] = float(
                        np.mean([len(set(w)) / len(w) if w else 0.0 for w in words])
                    )
                    info["genes_per_cell_mean" + suffix] = total / max(1, len(words))
                info["prompt_left_in"] = sum("Cell sentence:" in x for x in cells)
                info["examples"] = [c[-200:] for c in cells[:3]]
            out[name] = rate(info, len(cell_types))

    sys.stdout = real_stdout
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
