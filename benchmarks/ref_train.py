"""Time the reference package's fine-tuning (``CSModel.fine_tune``) on one model and dataset.

Runs inside .venv-ref (``make bench-ref``) and only calls the public API of the reference
PyPI package ``cell2sentence==1.2.0``; nothing from it is reproduced here.

    .venv-ref/bin/python benchmarks/ref_train.py DATA.h5ad MODEL_DIR WORK_DIR \
        --task cell_type_prediction --top-k 1000 --batch-size 8 --epochs 1

What is measured:
  - ``fine_tune_s``: the whole ``CSModel.fine_tune`` call (prompt formatting, tokenization,
    model reload, split, training);
  - ``train_s``: only ``Trainer.train`` inside it (wrapped, not changed);
  - the positions of every training batch, counted by wrapping the collator it passes to
    the Trainer: real (attention mask 1) and padded positions.
Before timing, the AnnData is converted with ``CSData.adata_to_arrow`` (not timed).

Prints one JSON line on stdout; everything the reference prints goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("h5ad")
    p.add_argument("model")
    p.add_argument("work")
    p.add_argument("--task", default="cell_type_prediction")
    p.add_argument("--top-k", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=1e-4)
    args = p.parse_args(argv)

    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # the reference prints progress on stdout
    import anndata
    import transformers
    from cell2sentence import CSData, CSModel

    counts = {"real": 0, "padded": 0, "batches": 0}
    timing = {}
    orig_init, orig_train = transformers.Trainer.__init__, transformers.Trainer.train

    def init(self, *a, **kw):
        collate = kw.get("data_collator")

        def counting(examples):
            batch = collate(examples)
            if self_ref.get("training"):
                real = int(batch["attention_mask"].sum())
                counts["real"] += real
                counts["padded"] += batch["attention_mask"].numel() - real
                counts["batches"] += 1
            return batch

        if collate is not None:
            kw["data_collator"] = counting
        orig_init(self, *a, **kw)

    self_ref: dict = {}

    def train(self, *a, **kw):
        self_ref["training"] = True
        t = time.perf_counter()
        try:
            return orig_train(self, *a, **kw)
        finally:
            timing["train_s"] = time.perf_counter() - t
            self_ref["training"] = False

    transformers.Trainer.__init__ = init
    transformers.Trainer.train = train

    os.makedirs(args.work, exist_ok=True)
    adata = anndata.read_h5ad(args.h5ad)
    arrow, vocab = CSData.adata_to_arrow(
        adata, random_state=0, sentence_delimiter=" ", label_col_names=["cell_type", "organism"]
    )
    csdata = CSData.csdata_from_arrow(arrow, vocab, save_dir=args.work, save_name="data")
    csmodel = CSModel(args.model, save_dir=args.work, save_name="model")
    out_dir = os.path.join(args.work, "out")
    os.makedirs(out_dir, exist_ok=True)
    targs = transformers.TrainingArguments(
        output_dir=out_dir,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        eval_strategy="no",
        save_strategy="no",
        logging_steps=1000,
        report_to="none",
        use_cpu=True,
        seed=0,
    )
    t = time.perf_counter()
    csmodel.fine_tune(
        csdata, args.task, targs, loss_on_response_only=True, top_k_genes=args.top_k, num_proc=1
    )
    fine_tune_s = time.perf_counter() - t
    sys.stdout = real_stdout
    total = counts["real"] + counts["padded"]
    print(
        json.dumps(
            {
                "fine_tune_s": fine_tune_s,
                "train_s": timing.get("train_s"),
                "real_tokens": counts["real"],
                "padded_positions": counts["padded"],
                "padded_fraction": counts["padded"] / total if total else None,
                "batches": counts["batches"],
                "tokens_per_s": counts["real"] / timing["train_s"]
                if timing.get("train_s")
                else None,
            }
        )
    )
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
