"""Encoded examples as compact arrays: every token of every example in one int32 array, with
offsets, the prompt/response boundary, genes per sentence and the cells of each. A million
examples of 200 tokens take 0.8 GB here against many more as Python lists; an item is turned
into lists only when a batch asks for it. With a ``spill`` directory the tokens go to a file
chunk by chunk and are read back through a memory map: the process then holds about 34 bytes
per example, and the operating system pages the tokens in as batches ask for them."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from c2s._errors import C2SError
from c2s.encoding._encode import IGNORE, EncodeStats, shorten, token_ids

CHUNK = 1024  # examples rendered and tokenized per tokenizer call


@dataclass
class FlatExamples:
    """Encoded examples: example ``i`` is ``ids[offsets[i]:offsets[i + 1]]`` (EOS included),
    its first ``boundary[i]`` tokens are prompt (no loss when the loss is on the response
    only; 0 otherwise), rendered with ``n_genes[i]`` genes per sentence from the rows
    ``cells[cell_offsets[i]:cell_offsets[i + 1]]``; ``task[i]`` numbers its task."""

    ids: np.ndarray
    offsets: np.ndarray
    boundary: np.ndarray
    n_genes: np.ndarray
    cells: np.ndarray
    cell_offsets: np.ndarray
    task: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def trained_tokens(self) -> np.ndarray:
        """Per example: positions after the first whose label is trained."""
        return self.lengths() - np.maximum(self.boundary, 1)

    def item(self, i: int) -> dict:
        """Example ``i`` as the collator takes it (lists), with its ``n_genes``, ``cells`` and
        ``task``."""
        ids = self.ids[self.offsets[i] : self.offsets[i + 1]].tolist()
        b = int(self.boundary[i])
        return {
            "input_ids": ids,
            "attention_mask": [1] * len(ids),
            "labels": [IGNORE] * b + ids[b:],
            "n_genes": int(self.n_genes[i]),
            "cells": self.cells[self.cell_offsets[i] : self.cell_offsets[i + 1]].tolist(),
            "task": int(self.task[i]),
        }

    @classmethod
    def concat(cls, parts: Sequence[FlatExamples]) -> FlatExamples:
        parts = [p for p in parts if len(p)]
        if not parts:
            return _empty()
        if len(parts) == 1:
            return parts[0]  # no copy
        ids = None
        spilled = [p.ids for p in parts if isinstance(p.ids, np.memmap)]
        if spilled:  # join on disk, next to the first spilled part
            with _Spill(Path(spilled[0].filename).parent) as sink:
                for p in parts:
                    for a in range(0, len(p.ids), 1 << 24):
                        sink.add(np.asarray(p.ids[a : a + (1 << 24)]))
            ids = sink.array()
        shift = np.cumsum([0, *[len(p.ids) for p in parts[:-1]]])
        cshift = np.cumsum([0, *[len(p.cells) for p in parts[:-1]]])
        return cls(
            np.concatenate([p.ids for p in parts]) if ids is None else ids,
            np.concatenate([[0], *[p.offsets[1:] + s for p, s in zip(parts, shift, strict=True)]]),
            np.concatenate([p.boundary for p in parts]),
            np.concatenate([p.n_genes for p in parts]),
            np.concatenate([p.cells for p in parts]),
            np.concatenate(
                [[0], *[p.cell_offsets[1:] + s for p, s in zip(parts, cshift, strict=True)]]
            ),
            np.concatenate([p.task for p in parts]),
        )


class _Spill:
    """Tokens appended to a new file in ``directory``; read back as a read-only memory map."""

    def __init__(self, directory: Path):
        import tempfile

        fd, name = tempfile.mkstemp(prefix="tokens-", suffix=".int32", dir=directory)
        self.path = Path(name)
        self.file = os.fdopen(fd, "wb")
        self.n = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()

    def add(self, ids: np.ndarray) -> None:
        np.ascontiguousarray(ids, dtype=np.int32).tofile(self.file)
        self.n += len(ids)

    def array(self) -> np.ndarray:
        if self.n == 0:
            return np.zeros(0, dtype=np.int32)
        return np.memmap(self.path, dtype=np.int32, mode="r", shape=(self.n,))


def _empty() -> FlatExamples:
    z = np.zeros(0, dtype=np.int32)
    return FlatExamples(
        z, np.zeros(1, np.int64), z, z, z.astype(np.int64), np.zeros(1, np.int64), z
    )


def encode_flat(
    renderer,
    sentences,
    tokenizer,
    *,
    max_length: int,
    loss_on_response_only: bool = True,
    rows: Sequence[int] | None = None,
    task: int = 0,
    spill: str | os.PathLike | None = None,
) -> tuple[FlatExamples, EncodeStats]:
    """Render and encode every example of ``renderer`` over ``sentences`` into
    :class:`FlatExamples` (``CHUNK`` examples per tokenizer call). An example longer than
    ``max_length`` is rendered again with fewer genes (counted as shortened), or left out
    when even one gene per cell does not fit (counted as dropped). ``spill``: a directory
    that receives the tokens (see the module docstring)."""
    if max_length < 8:
        raise C2SError(f"max_length {max_length} is too small for any prompt.")
    stats = EncodeStats()
    ids, cells = [], []  # one array per chunk of examples
    sink = _Spill(Path(spill)) if spill is not None else None
    lens, bounds, ks, ncells = [], [], [], []
    plan = list(renderer.plan(sentences, rows))
    for start in range(0, len(plan), CHUNK):
        part = plan[start : start + CHUNK]
        exs = [renderer.render(sentences, c, t) for c, t in part]
        encs = token_ids(tokenizer, [e.prompt for e in exs], [e.response for e in exs])
        chunk_ids, chunk_cells = [], []
        for (c, t), ex, (tok, b) in zip(part, exs, encs, strict=True):
            k = ex.n_genes
            if len(tok) > max_length:
                fit, k = shorten(renderer, sentences, c, t, tokenizer, max_length, ex.n_genes)
                if fit is None:
                    stats.n_dropped += 1
                    continue
                tok, b = fit
                stats.n_shortened += 1
            chunk_ids += tok
            chunk_cells += c
            lens.append(len(tok))
            bounds.append(b if loss_on_response_only else 0)
            ks.append(k)
            ncells.append(len(c))
            stats.n_examples += 1
            stats.n_tokens += len(tok)
        if sink is None:
            ids.append(np.asarray(chunk_ids, dtype=np.int32))
        else:
            sink.add(np.asarray(chunk_ids, dtype=np.int32))
        cells.append(np.asarray(chunk_cells, dtype=np.int64))
    if stats.n_shortened or stats.n_dropped:
        warnings.warn(
            f"{stats.n_shortened} examples were longer than {max_length} tokens and were "
            "shortened by dropping genes from the end of their cell sentences; "
            f"{stats.n_dropped} did not fit even with one gene and were left out.",
            stacklevel=3,
        )
    if sink is not None:
        sink.file.close()
    if not lens:
        raise C2SError(f"No example fits in {max_length} tokens; raise max_length.")
    flat = FlatExamples(
        np.concatenate(ids) if sink is None else sink.array(),
        np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
        np.asarray(bounds, dtype=np.int32),
        np.asarray(ks, dtype=np.int32),
        np.concatenate(cells),
        np.concatenate([[0], np.cumsum(ncells)]).astype(np.int64),
        np.full(len(lens), task, dtype=np.int16),
    )
    return flat, stats


def encode_examples(
    renderer, sentences, tokenizer, *, max_length: int, **options
) -> tuple[list[dict], EncodeStats]:
    """Render and encode every example of ``renderer`` over ``sentences``, as
    :func:`encode_flat` does (``options``: its ``loss_on_response_only`` and ``rows``), as
    lists.

    Returns the encoded examples (dicts of lists, plus ``n_genes`` and ``cells``) and counts
    of examples shortened to fit ``max_length`` and dropped because even one gene per cell
    does not fit.
    """
    flat, stats = encode_flat(renderer, sentences, tokenizer, max_length=max_length, **options)
    return [flat.item(i) for i in range(len(flat))], stats


__all__ = ["FlatExamples", "encode_examples", "encode_flat"]
