"""Inference throughput: c2s ``tl.predict`` / ``tl.embed`` / ``tl.generate`` vs the reference tasks.

Both sides use the same tiny GPT-NeoX model (built from the PBMC gene vocabulary and trained
here, 150 steps by default, on cell-type prediction and generation) and the same cells: the
first N cells of a seeded random order of the 700 PBMCs, written to
bench-out/infer/cells_N.h5ad. That order (numpy default_rng(0).permutation) is also the one
the dataset's split drew, so the first 560 cells are all training cells (meta.cells_per_split).
The reference runs in .venv-ref (benchmarks/ref_infer.py); c2s loads the model once and only
the verb calls are timed. Per section: seconds, cells/s and a quality number (accuracy for
prediction; valid and unique gene rates for generation).

    .venv/bin/python benchmarks/bench_infer.py [--n-cells 300] [--n-genes 30] [--batch-size 8]
        [--sections predict,embed,generate] [--train-steps 150] [--ref .venv-ref/bin/python]
        [--repeat 3]

The reference's predictions decode greedily one cell at a time with its default budget
(1024 new tokens) and again with a fair budget (the longest label's tokens + 2); its
generations sample at temperature 1 (as c2s does) with its default budget and with
n_genes x (longest gene's tokens) + 2 tokens.

Writes bench-out/infer.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path("bench-out/infer")


def prepare(n_genes: int, steps: int) -> tuple[object, Path]:
    import c2s
    from c2s.model import C2SModel
    from c2s.train import fine_tune

    OUT.mkdir(parents=True, exist_ok=True)
    data, model = OUT / "pbmc", OUT / f"model-g{n_genes}-s{steps}"
    adata = c2s.datasets.pbmc68k_reduced()
    if not data.exists():
        ds = c2s.io.convert(adata, data, obs_keys=["cell_type", "organism"], seed=0)
        ds.update_meta(inverse=c2s.inverse.fit_inverse(ds.sentences(split="train")).to_dict())
    if not model.exists():
        m = C2SModel.from_scratch(data, preset="tiny", max_length=1024, device="cpu")
        fine_tune(
            m,
            data,
            output_dir=model,
            tasks=["cell_type_prediction:2", "cell_type_generation"],
            n_genes=n_genes,
            max_steps=steps,
            batch_size=16,
            learning_rate=3e-3,
            eval_split=None,
        )
        shutil.rmtree(model / "checkpoints", ignore_errors=True)  # no resume needed
    return adata, model


def subset(adata, n: int) -> tuple[object, Path]:
    """The first n cells of a seeded random order (the rule ref_infer.py --n-cells uses)."""
    n = min(n, adata.n_obs)
    order = np.random.default_rng(0).permutation(adata.n_obs)[:n]
    sub = adata[order].copy()
    path = OUT / f"cells_{n}.h5ad"
    if not path.exists():
        sub.write_h5ad(path)
    return sub, path


def cell_type_list(labels: list[str], n: int) -> list[str]:
    """n conditions, the labels in turn, grouped by label (tl.generate takes {label: count})."""
    counts = {lab: n // len(labels) + (i < n % len(labels)) for i, lab in enumerate(labels)}
    return [lab for lab, c in counts.items() for _ in range(c)]


def gene_rates(sentences: list[list[str]], known: set[str]) -> dict:
    total = sum(len(s) for s in sentences)
    return {
        "validity": sum(g in known for s in sentences for g in s) / max(1, total),
        "uniqueness": float(np.mean([len(set(s)) / len(s) if s else 0.0 for s in sentences])),
        "genes_per_cell_mean": total / max(1, len(sentences)),
    }


def ours(
    model_dir: Path, sub, n_genes: int, batch: int, sections: list[str], types, repeat: int = 1
) -> dict:
    import c2s
    from c2s.model import C2SModel

    m = C2SModel.from_pretrained(model_dir, device="cpu")
    n = sub.n_obs
    res: dict = {"dtype": str(next(m.model.parameters()).dtype)}
    # Warm-up (not timed): the first forward passes of a process pay one-off setup (thread
    # pools, kernel selection); 4 cells through each verb.
    warm = sub[:4].copy()
    c2s.tl.predict(warm, m, n_genes=n_genes, batch_size=batch)
    c2s.tl.embed(warm, m, n_genes=n_genes, batch_size=batch)
    c2s.tl.generate(m, {types[0]: 1}, n_genes=min(n_genes, 5), batch_size=batch)

    def timed(fn, repeat=1):
        """The last result and the median seconds of ``repeat`` calls."""
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return out, float(np.median(times))

    if "predict" in sections:
        for mode in ("score", "constrained"):
            a = sub.copy()
            _, s = timed(
                lambda a=a, mode=mode: c2s.tl.predict(
                    a, m, n_genes=n_genes, batch_size=batch, mode=mode
                ),
                repeat,
            )
            pred = a.obs["c2s_prediction"].astype(str).to_numpy()
            acc = float(np.mean(pred == a.obs["cell_type"].astype(str).to_numpy()))
            res[f"predict_{mode}"] = {
                "seconds": s,
                "cells_per_s": n / s,
                "accuracy": acc,
                "n_distinct_answers": len(set(pred)),
            }
        res["predict_floor"] = forward_floor(m, sub, n_genes, batch, repeat)
    if "embed" in sections:
        a = sub.copy()
        _, s = timed(lambda: c2s.tl.embed(a, m, n_genes=n_genes, batch_size=batch), repeat)
        res["embed"] = {"seconds": s, "cells_per_s": n / s, "shape": list(a.obsm["X_c2s"].shape)}
    if "generate" in sections:
        counts = dict.fromkeys(types, 0)
        for t in types:
            counts[t] += 1  # a list would be de-duplicated by tl.generate
        gen, s = timed(
            lambda: c2s.tl.generate(m, counts, n_genes=n_genes, batch_size=batch, seed=0)
        )
        sents = [str(x).split() for x in gen.obs["c2s_sentence"]]
        res["generate"] = {
            "seconds": s,
            "cells_per_s": len(types) / s,
            **gene_rates(sents, set(m.config.genes)),
        }
    return res


def forward_floor(m, sub, n_genes: int, batch: int, repeat: int) -> dict:
    """The least any prediction can cost: one forward pass over every prompt's own tokens
    (batches of ``batch``, the last position's logits only), after the opening all prompts share
    (run once, as c2s does), with the prompts rendered and tokenized beforehand (not timed).
    The reference's time divided by this bounds the speed-up any method reading the prompts
    could reach on this machine."""
    import torch

    from c2s.model._batching import Preamble, left_pad, length_batches
    from c2s.tl._inputs import read_cells, renderer

    cs, _ = read_cells(sub, m, n_genes=n_genes)
    r = renderer(m, "cell_type_prediction", n_genes, "Homo sapiens")
    ids = m.tokenizer([r.prompt(cs, [i]) for i in range(cs.n_cells)])["input_ids"]

    def run():
        with torch.inference_mode():
            pre = Preamble(m.model, ids, m.device, min_len=1)
            for rows in length_batches([len(x) for x in ids], batch):
                enc = left_pad([ids[i][pre.n :] for i in rows], m.tokenizer.pad_token_id, m.device)
                ones = torch.ones((len(rows), pre.n), dtype=torch.long)
                enc["attention_mask"] = torch.cat([ones, enc["attention_mask"]], 1)
                enc["position_ids"] += pre.n
                m.model(**enc, past_key_values=pre.cache_for(len(rows)), logits_to_keep=1)

    run()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    s = float(np.median(times))
    return {
        "seconds": s,
        "cells_per_s": len(ids) / s,
        "prompt_tokens": float(np.mean([len(x) for x in ids])),
    }


def reference(py: str, h5ad: Path, model: Path, args, max_tokens: int, gen_tokens: int, types):
    work = OUT / f"ref-{h5ad.stem}"
    types_json = OUT / f"cell_types_{len(types)}.json"
    types_json.write_text(json.dumps(types))
    cmd = [py, "benchmarks/ref_infer.py", str(h5ad), str(model), str(work),
           "--n-genes", str(args.n_genes), "--batch-size", str(args.batch_size),
           "--sections", args.sections, "--max-num-tokens", str(max_tokens),
           "--gen-max-num-tokens", str(gen_tokens), "--cell-types-json", str(types_json),
           "--repeat", str(args.repeat)]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "WANDB_DISABLED": "true"}
    )
    if proc.returncode != 0:
        raise SystemExit(f"reference run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), cmd


def _cell(d: dict | None, quality: str | None) -> str:
    if d is None:
        return "| - | - | - "
    if "error" in d:
        return f"| error: {d['error'][:60]} | - | - "
    q = "-"
    if quality == "accuracy":
        q = f"acc {d['accuracy']:.1%}"
        if "accuracy_as_returned" in d:
            q += f" (as returned {d['accuracy_as_returned']:.1%})"
    elif quality == "genes":
        q = f"valid {d['validity']:.1%}, unique {d['uniqueness']:.1%}"
        if "validity_as_returned" in d:
            q += (
                f" (as returned {d['validity_as_returned']:.1%}, {d['uniqueness_as_returned']:.1%})"
            )
    return f"| {d['seconds']:.2f} | {d['cells_per_s']:,.1f} | {q} "


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-cells", type=int, default=300)
    p.add_argument("--n-genes", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--sections", default="predict,embed,generate")
    p.add_argument("--train-steps", type=int, default=150, help="steps to train the tiny model")
    p.add_argument("--ref", default=".venv-ref/bin/python", help="python of the reference venv")
    p.add_argument("--repeat", type=int, default=3, help="time predict and embed N times (median)")
    args = p.parse_args()
    sections = [s for s in args.sections.split(",") if s]
    os.environ.setdefault("C2S_NO_PROGRESS", "1")
    from c2s.model import C2SModel

    adata, model_dir = prepare(args.n_genes, args.train_steps)
    sub, h5ad = subset(adata, args.n_cells)
    m = C2SModel.from_pretrained(model_dir, device="cpu")
    tok, labels = m.tokenizer, list(m.config.labels["cell_type"])
    max_tokens = max(len(tok(" " + lab + ".")["input_ids"]) for lab in labels) + 2
    gene_tokens = max(len(tok(" " + g)["input_ids"]) for g in m.config.genes)
    gen_tokens = args.n_genes * gene_tokens + 2
    types = cell_type_list(labels, sub.n_obs)
    training = {k: m.config.training.get(k) for k in ("steps", "train_loss", "n_train_examples")}
    del m

    ref, ref_cmd = reference(args.ref, h5ad, model_dir, args, max_tokens, gen_tokens, types)
    print(json.dumps({"ref": ref}), file=sys.stderr)
    mine = ours(model_dir, sub, args.n_genes, args.batch_size, sections, types, args.repeat)
    print(json.dumps({"ours": mine}), file=sys.stderr)

    # (section, reference key, c2s key, quality)
    pairs = [
        ("predict", "predict", "predict_score", "accuracy"),
        ("predict", "predict_max_tokens", "predict_score", "accuracy"),
        ("predict", "predict_max_tokens", "predict_constrained", "accuracy"),
        ("predict", "predict", "predict_floor", None),
        ("embed", "embed", "embed", None),
        ("generate", "generate", "generate", "genes"),
        ("generate", "generate_max_tokens", "generate", "genes"),
    ]
    rows = []
    for section, rk, ok, quality in pairs:
        if section not in sections:
            continue
        a, b = ref.get(rk), mine.get(ok)
        ratio = None
        if a and b and "error" not in a and a.get("cells_per_s"):
            ratio = b["cells_per_s"] / a["cells_per_s"]
        rows.append({"section": section, "reference": rk, "ours": ok, "quality": quality,
                     "ratio_cells_per_s": ratio})  # fmt: skip
    from c2s.io import read_dataset

    split = read_dataset(OUT / "pbmc").sentences(values=False, obs_columns=[]).obs["split"]
    in_split = split.reindex(sub.obs_names).astype(str).value_counts().to_dict()
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "command": "benchmarks/bench_infer.py " + " ".join(sys.argv[1:]),
        "reference_command": " ".join(ref_cmd),
        "n_cells": sub.n_obs,
        "cells_per_split": in_split,
        "n_genes": args.n_genes,
        "batch_size": args.batch_size,
        "model": str(model_dir),
        "model_training": training,
        "ref_max_num_tokens": max_tokens,
        "ref_gen_max_num_tokens": gen_tokens,
        "cell_types": sorted(set(types)),
    }
    result = {"meta": meta, "reference": ref, "ours": mine, "rows": rows}
    (OUT.parent / "infer.json").write_text(json.dumps(result, indent=1))

    print(
        "| section | reference call | ref s | ref cells/s | ref quality "
        "| c2s call | c2s s | c2s cells/s | c2s quality | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    ref_names = {
        "predict": "predict_cell_types_of_data (1024 tokens)",
        "predict_max_tokens": f"predict_cell_types_of_data (max_num_tokens={max_tokens})",
        "embed": f"embed_cells (batch {args.batch_size})",
        "generate": "generate_cells_conditioned_on_cell_type (1024 tokens)",
        "generate_max_tokens": f"generate_cells_conditioned_on_cell_type (max_num_tokens={gen_tokens})",
    }
    our_names = {
        "predict_score": "tl.predict (score)",
        "predict_constrained": "tl.predict (constrained)",
        "predict_floor": "floor: one forward pass over the prompts (no answer)",
        "embed": "tl.embed",
        "generate": "tl.generate (T=1)",
    }
    for r in rows:
        a, b = ref.get(r["reference"]), mine.get(r["ours"])
        ratio = f"**{r['ratio_cells_per_s']:.1f}x**" if r["ratio_cells_per_s"] else "-"
        print(
            f"| {r['section']} | {ref_names[r['reference']]} {_cell(a, r['quality'])}"
            f"| {our_names[r['ours']]} {_cell(b, r['quality'])}| {ratio} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
