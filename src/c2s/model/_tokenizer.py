"""A tokenizer for from-scratch models: one token per gene, exact round trips.

Text is split into pieces by one regex: a word with its leading space (``" CD74"``; inner
``.`` and ``-`` stay in the word, so ``RP11-34P13.7`` is one piece), a punctuation mark
(``. , : ; ( )``), or a single whitespace character. Each piece is one entry of a word-level
vocabulary; decoding concatenates the pieces, so ``decode(encode(text)) == text`` for any
text made of known pieces. The vocabulary holds every gene (with and without a leading
space), the words of every prompt template, numbers up to ``max_number`` and the words of
any extra texts (labels, tissue names, abstracts). Anything else becomes ``<unk>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from c2s._errors import C2SError
from c2s._warn import warn_user

EOS, PAD, UNK = "<|endoftext|>", "<pad>", "<unk>"
PIECE = r" ?[^\s.,:;()]+(?:[.\-][^\s.,:;()]+)*|[.,:;()]|\s"
_PIECE = re.compile(PIECE)
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def pieces(text: str) -> list[str]:
    """The pieces the tokenizer splits ``text`` into (pure Python, for building the vocab)."""
    return _PIECE.findall(text)


def _both(piece: str) -> tuple[str, str]:
    bare = piece[1:] if piece.startswith(" ") and len(piece) > 1 else piece
    return bare, " " + bare


def build_gene_tokenizer(
    genes: Sequence[str],
    *,
    texts: Iterable[str] = (),
    profiles: Sequence[str] = ("compat", "paraphrase"),
    max_number: int = 4096,
):
    """Build a ``PreTrainedTokenizerFast`` for a gene vocabulary.

    Parameters
    ----------
    genes
        Gene names as they appear in sentences (upper-cased display names).
    texts
        Extra texts whose words must be known: labels, tissues, organisms, abstracts.
    profiles
        Prompt profiles whose template words are added.
    max_number
        Numbers ``0..max_number`` (for ``num_genes`` / ``num_cells``) are single tokens.

    Returns
    -------
    A fast tokenizer with EOS ``<|endoftext|>``, pad ``<pad>`` and unk ``<unk>``; every gene is
    one token, with or without a leading space.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from c2s.prompts import load_profile

    vocab: dict[str, int] = {}

    def add(piece: str) -> None:
        if piece not in vocab:
            vocab[piece] = len(vocab)

    for special in (EOS, PAD, UNK):
        add(special)
    for p in (".", ",", ":", ";", "(", ")", "\n", " ", "\t"):
        add(p)
    multi = [g for g in genes if len(pieces(g)) != 1 or pieces(g)[0] != g]
    if multi:
        warn_user(
            f"{len(multi)} gene names do not form a single piece (e.g. {multi[0]!r}); they will "
            "take several tokens, or <unk> for parts the vocabulary lacks.",
        )
    for g in genes:
        for p in pieces(g):
            for v in _both(p):
                add(v)
    for i in range(max_number + 1):
        for v in _both(str(i)):
            add(v)
    words = []
    for profile in profiles:
        for templates in load_profile(profile).values():
            for t in templates:
                words += [_PLACEHOLDER.sub(" ", t.prompt), _PLACEHOLDER.sub(" ", t.response)]
    for text in [*words, *texts]:
        for p in pieces(str(text)):
            for v in _both(p):
                add(v)
    if len(vocab) < 10:
        raise C2SError("The tokenizer vocabulary is empty; pass gene names.")
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(PIECE), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        clean_up_tokenization_spaces=False,
    )
