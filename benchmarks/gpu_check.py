"""The GPU check: c2s on one CUDA device, in under 8 minutes, results as JSON.

1. bf16 training of a Pythia-410M-shaped GPT-NeoX (24 layers, hidden 1024, 16 heads; random
   weights built from its config, no download) on synthetic cells for 30 steps: the loss
   must fall; tokens/s and peak GPU memory are reported, and the trained weights are checked
   to be float32 masters under bf16 autocast.
2. Inference on 2,000 cells with that model: label scoring, embedding and gene-constrained
   generation, cells/s each (bf16), with generation's valid and unique gene rates.
3. The reference package's task functions on the same cells when it is importable there
   (it is not shipped with the check; "not installed" otherwise).

    python3 benchmarks/gpu_check.py --out DIR            # what benchmarks/gpu_check.sh runs
    python3 benchmarks/gpu_check.py --device cpu --small --out /tmp/g   # a smoke run on CPU

Writes DIR/gpu_check.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

PYTHIA_410M = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16}
SMALL = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.environ.get("OUT", "bench-out/gpu"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--cells", type=int, default=2000)
    ap.add_argument("--n-genes", type=int, default=200)
    ap.add_argument("--small", action="store_true", help="a 2-layer model (smoke run)")
    args = ap.parse_args()
    os.environ.setdefault("C2S_NO_PROGRESS", "1")
    import numpy as np
    import torch
    import transformers

    import c2s
    from c2s.model import C2SModel
    from c2s.train import fine_tune

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    on_gpu = args.device.startswith("cuda")
    if on_gpu and not torch.cuda.is_available():
        print("CUDA is not available here.", file=sys.stderr)
        return 2
    res: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "c2s": c2s.__version__,
        "device": torch.cuda.get_device_name() if on_gpu else platform.processor() or "cpu",
    }
    t0 = time.perf_counter()
    n_cells = args.cells + 1000
    adata = c2s.datasets.synthetic(n_cells, 4000, n_cell_types=8, genes_per_cell=800, seed=0)
    ds = c2s.io.convert(
        adata, out / "work" / "ds", obs_keys=["cell_type"], normalize=True, seed=0,
        overwrite=True, progress_bar=False, split=(1000 / n_cells, 0.0, args.cells / n_cells),
    )  # fmt: skip
    ds.update_meta(inverse=c2s.inverse.fit_inverse(ds.sentences(split="train")).to_dict())
    shape = SMALL if args.small else PYTHIA_410M
    model = C2SModel.from_scratch(ds, device=args.device, max_length=1024, **shape)
    dtype = torch.bfloat16 if on_gpu else torch.float32
    model.model.to(dtype)
    res["model"] = {**shape, "parameters": model.n_parameters(), "dtype": str(dtype)}
    seen: dict = {}

    from transformers import TrainerCallback

    class Watch(TrainerCallback):
        def on_step_end(self, a, state, control, model=None, **kw):
            seen["trained_dtypes"] = sorted(
                {str(p.dtype) for p in model.parameters() if p.requires_grad}
            )

    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    r = fine_tune(
        model, ds, tasks=["cell_type_prediction", "cell_type_generation"], n_genes=args.n_genes,
        max_steps=args.steps, batch_size=8, learning_rate=3e-4, warmup=0.1, logging_steps=1,
        eval_split=None, probe=False, callbacks=[Watch()], organism="Homo sapiens",
    )  # fmt: skip
    _, losses, _, _ = r.loss_curve()
    k = max(1, len(losses) // 5)
    res["training"] = {
        "steps": r.steps,
        "first_losses": losses[:k],
        "last_losses": losses[-k:],
        "loss_fell": float(np.mean(losses[-k:])) < float(np.mean(losses[:k])),
        "tokens_per_s": r.tokens_per_second,
        "seconds": r.seconds,
        "trained_dtypes": seen.get("trained_dtypes"),
        "dtype_after": str(next(model.model.parameters()).dtype),
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if on_gpu else None,
    }
    res["inference"] = infer(c2s, model, ds, args)
    res["reference"] = reference_status()
    res["total_s"] = time.perf_counter() - t0
    (out / "gpu_check.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    print(json.dumps(res, indent=1, default=str))
    return 0 if res["training"]["loss_fell"] else 1


def infer(c2s, model, ds, args) -> dict:
    import numpy as np
    import torch

    def timed(fn):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        value = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return value, time.perf_counter() - t

    kw = {"split": "test", "n_genes": args.n_genes, "organism": "Homo sapiens", "batch_size": 64}
    f, s = timed(lambda: c2s.tl.predict(ds, model, inplace=False, **kw))
    n = len(f)
    out = {"cells": n, "predict_cells_per_s": n / s}
    _, s = timed(lambda: c2s.tl.embed(ds, model, inplace=False, **kw))
    out["embed_cells_per_s"] = n / s
    labels = model.config.labels["cell_type"]
    want = {lab: max(1, n // len(labels)) for lab in labels}
    g, s = timed(
        lambda: c2s.tl.generate(
            model, want, n_genes=args.n_genes, organism="Homo sapiens", batch_size=64, seed=0
        )
    )
    genes = set(model.config.genes)
    sents = [x.split() for x in g.obs["c2s_sentence"]]
    out.update(
        generate_cells_per_s=len(sents) / s,
        generated_cells=len(sents),
        valid_gene_rate=float(np.mean([w in genes for x in sents for w in x])),
        unique_gene_rate=float(np.mean([len(set(x)) == len(x) for x in sents])),
    )
    return out


def reference_status() -> str:
    try:
        import cell2sentence  # noqa: F401
    except ImportError:
        return "not installed on this machine (carry its wheels to compare)"
    return "installed; compare with benchmarks/bench_infer.py --ref python3"


if __name__ == "__main__":
    sys.exit(main())
