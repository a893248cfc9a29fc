"""Cells and byte-level BPE tokenizers for the token-encoding and collator tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from c2s.prompts import Renderer
from c2s.sentences import CellSentences, Vocab

GENES = [f"GENE{i}" for i in range(40)] + ["HLA-DRA", "CD74", "LYZ"]


def cells(n=12, length=30, seed=0):
    rng = np.random.default_rng(seed)
    sents = [rng.choice(len(GENES), size=length, replace=False) for _ in range(n)]
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sents])])
    obs = pd.DataFrame(
        {"cell_type": rng.choice(["CD14+ Monocyte", "B cell"], size=n), "organism": "Homo sapiens"},
        index=[f"c{i}" for i in range(n)],
    )
    return CellSentences(np.concatenate(sents), offsets, Vocab.from_names(GENES), obs)


def make_tokenizer(with_bos: bool):
    """A small byte-level BPE (gene names split into several tokens, as with Pythia)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    texts = [e.text for e in Renderer("cell_type_prediction", n_genes=30).examples(cells(40))]
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    kw = {}
    if with_bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
        )
        kw["bos_token"] = "<s>"
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", **kw)
