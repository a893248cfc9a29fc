"""Training examples as compact arrays give exactly the examples, weights and batches of the
straightforward path (every example encoded alone into lists, weights by copying lists)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from c2s.encoding import encode_text
from c2s.model import C2SModel
from c2s.train import TrainConfig, build_examples
from c2s.train._config import task_weights
from c2s.train._examples import needed_columns, renderer_for
from c2s.train._sampler import ShuffledLengthBuckets


def eager(ds, tok, cfg, split, max_length):
    """The reference: one encode_text call per example, lists copied for weights."""
    rows = ds.split_indices()[split]
    renderers = [(renderer_for(t, cfg), w) for t, w in task_weights(cfg.tasks)]
    cols = needed_columns(ds, [r for r, _ in renderers])
    cs = ds.sentences(rows=rows, n_genes=cfg.n_genes, values=False, obs_columns=cols)
    rng = np.random.default_rng([cfg.seed, 7, len(split)])

    def repeat(items, weight):
        whole, frac = int(weight), weight - int(weight)
        extra = rng.choice(len(items), size=round(frac * len(items)), replace=False)
        return items * whole + [items[i] for i in np.sort(extra)]

    out = []
    for ti, (r, weight) in enumerate(renderers):
        items = []
        for cells, template in r.plan(cs, None):
            ex = r.render(cs, cells, template)
            enc = encode_text(tok, ex.prompt, ex.response)
            assert len(enc["input_ids"]) <= max_length
            items.append({**enc, "n_genes": ex.n_genes, "cells": list(cells), "task": ti})
        if cfg.class_balance and r.task.answer == "label":
            lab = cs.obs[r.task.label].astype(str).to_numpy()
            per = [lab[it["cells"][0]] for it in items]
            names, counts = np.unique(per, return_counts=True)
            w = dict(zip(names, (counts.max() / counts) ** cfg.class_balance, strict=True))
            items = [
                x
                for name in names
                for x in repeat(
                    [it for it, p in zip(items, per, strict=True) if p == name], w[name]
                )
            ]
        if weight != 1.0:
            items = repeat(items, weight)
        out += items
    return out


def test_compact_examples_equal_the_eager_path(pbmc_dataset):
    m = C2SModel.from_scratch(pbmc_dataset, max_length=512, device="cpu")
    cfg = TrainConfig(
        tasks=["cell_type_prediction:2.5", "cell_type_generation:0.3"], n_genes=15,
        class_balance=0.5, seed=3,
    )  # fmt: skip
    kw = {"split": "train", "max_length": 512, "limit": None, "weighted": True}
    got, _, _ = build_examples(pbmc_dataset, m.tokenizer, cfg, **kw)
    want = eager(pbmc_dataset, m.tokenizer, cfg, "train", 512)
    assert len(got) == len(want)
    for j, (a, b) in enumerate(zip(got, want, strict=True)):
        assert a["example"] == j
        for key in ("input_ids", "attention_mask", "labels", "n_genes", "cells", "task"):
            assert a[key] == b[key], (j, key)
    # the same lengths, so the same batches for the same seed
    lengths = [len(b["input_ids"]) for b in want]
    assert got.lengths() == lengths
    s1 = list(ShuffledLengthBuckets(got.lengths(), 16, seed=3))
    s2 = list(ShuffledLengthBuckets(lengths, 16, seed=3))
    assert s1 == s2
    flat = got.flat
    assert flat.ids.dtype == np.int32 and len(flat) < len(got)  # repeats share tokens


def test_spilled_tokens_are_memory_mapped_and_equal(pbmc_dataset, tmp_path):
    """With a spill directory the tokens of every task go to files and come back through a
    memory map; the examples are the same as in memory."""
    m = C2SModel.from_scratch(pbmc_dataset, max_length=512, device="cpu")
    cfg = TrainConfig(tasks=["cell_type_prediction", "cell_type_generation"], n_genes=15)
    kw = {"split": "train", "max_length": 512, "limit": None, "weighted": True}
    mem, _, _ = build_examples(pbmc_dataset, m.tokenizer, cfg, **kw)
    disk, _, _ = build_examples(pbmc_dataset, m.tokenizer, cfg, spill=tmp_path, **kw)
    assert isinstance(disk.flat.ids, np.memmap) and not isinstance(mem.flat.ids, np.memmap)
    assert np.array_equal(disk.flat.ids, mem.flat.ids) and len(disk) == len(mem)
    for j in (0, len(mem) // 2, len(mem) - 1):
        assert disk[j] == mem[j]
    joined = tmp_path / str(disk.flat.ids.filename).rsplit("/", 1)[-1]
    assert joined.stat().st_size == 4 * len(mem.flat.ids)  # both tasks' tokens in one file
