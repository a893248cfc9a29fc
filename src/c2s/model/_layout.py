"""The token layout of gene-constrained generation: every gene's tokens as a trie
(:class:`GeneTrie`), and where the genes and the forced text of an answer go
(:class:`CellLayout`). Multi-cell answers (``Cell 1:\\n...\\nCell 2:\\n...``) interleave
forced text with the genes: :func:`cell_layout` reads that text's tokens, and which trie each
gene comes from, off the tokenization of a sample answer, so the generated tokens are
exactly those of the training format.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from c2s._errors import C2SError
from c2s._warn import warn_user


class GeneTrie:
    """Token sequences of every gene as it follows ``anchor + sep``, as a trie.

    With the default ``sep=" "`` these are the tokens of ``" " + gene`` (a gene after another
    gene); ``sep="\\n"`` gives the first gene of a multi-cell ``Cell i:`` block. Works for
    one-token-per-gene tokenizers (every gene a child of the root) and for pretrained
    tokenizers where a gene spans several tokens.
    """

    def __init__(
        self, tokenizer, genes: Sequence[str], anchor: str = "Cell sentence:", sep: str = " "
    ):
        enc = tokenizer(
            [f"{anchor}{sep}{g}" for g in genes],
            add_special_tokens=False,
            return_offsets_mapping=True,
        )
        cut = len(anchor)
        self.children: list[dict[int, int]] = [{}]
        self.parent = [-1]
        self.token = [-1]
        terminal = [-1]
        node_of = np.full(len(genes), -1, dtype=np.int64)
        clashes = 0
        for gi, (ids, offs) in enumerate(zip(enc["input_ids"], enc["offset_mapping"], strict=True)):
            seq = [t for t, (_, end) in zip(ids, offs, strict=True) if end > cut]
            if not seq:
                continue
            node = 0
            for t in seq:
                nxt = self.children[node].get(t)
                if nxt is None:
                    nxt = len(self.children)
                    self.children[node][t] = nxt
                    self.children.append({})
                    self.parent.append(node)
                    self.token.append(t)
                    terminal.append(-1)
                node = nxt
            if terminal[node] >= 0:
                clashes += 1
                continue
            terminal[node] = gi
            node_of[gi] = node
        if clashes:
            warn_user(
                f"{clashes} genes tokenize exactly like another gene and cannot be generated "
                "(unknown tokens?).",
            )
        self.terminal = np.asarray(terminal, dtype=np.int64)
        self.node_of = node_of  # gene index -> its terminal node (-1: cannot be generated)
        self.n_nodes = len(self.children)
        total = (self.terminal >= 0).astype(np.int64)
        for node in range(self.n_nodes - 1, 0, -1):  # children are numbered after parents
            total[self.parent[node]] += total[node]
        self.total = total
        self.n_genes = int((self.terminal >= 0).sum())
        self.depth = max((len(self.path(int(n))) for n in node_of if n >= 0), default=0)
        self.root_tokens = np.fromiter(self.children[0].keys(), dtype=np.int64)
        self.root_nodes = np.fromiter(self.children[0].values(), dtype=np.int64)
        self.single_token = all(not self.children[n] for n in self.root_nodes)

    def path(self, node: int) -> list[int]:
        """Nodes from ``node`` up to (not including) the root."""
        out = []
        while node > 0:
            out.append(node)
            node = self.parent[node]
        return out

    def tokens_of(self, gene: int) -> list[int]:
        """The token sequence of gene index ``gene`` (empty if it cannot be generated)."""
        node = int(self.node_of[gene])
        return [self.token[x] for x in reversed(self.path(node))] if node >= 0 else []


@dataclass
class CellLayout:
    """How the generated tokens of each prompt are laid out.

    ``heads[i]`` is fed before prompt ``i``'s first gene (the prompt and any forced answer
    opening such as ``Cell 1:``); ``seps[c]`` is forced between cell ``c`` and ``c + 1``;
    ``end`` is the token that follows the last gene (it closes a multi-token gene, and is
    not generated). A cell's first gene comes from ``first``, the others from ``rest``.
    """

    heads: list[list[int]]
    seps: list[list[int]]
    end: int
    first: GeneTrie
    rest: GeneTrie

    @classmethod
    def plain(cls, tokenizer, prompts: Sequence[str], trie: GeneTrie) -> CellLayout:
        """One cell right after each prompt's own tokens, every gene from ``trie``, EOS
        closing the last gene."""
        heads = [tokenizer(p)["input_ids"] for p in prompts]
        return cls(heads, [], tokenizer.eos_token_id, trie, trie)

    @property
    def n_cells(self) -> int:
        return len(self.seps) + 1

    def after(self, cell: int) -> int:
        """The token that may follow the last gene of cell ``cell``."""
        return self.seps[cell][0] if cell < len(self.seps) else self.end


def _sample_spans(text: str, start: int, sentence: list[str], n_cells: int):
    """Character spans of every gene of ``n_cells`` copies of ``sentence`` in ``text`` after
    ``start``, cell by cell: ``[(cell, a, b), ...]``."""
    joined = " ".join(sentence)
    spans, at = [], start
    for c in range(n_cells):
        q = text.find(joined, at)
        if q < 0:
            raise C2SError("The answer template does not hold its cell sentences verbatim.")
        for g in sentence:
            spans.append((c, q, q + len(g)))
            q += len(g) + 1
        at = q
    return spans


def _read_layout(tokenizer, text: str, start: int, sentence, n_cells, genes_idx, trie_for):
    """Tokenize one sample answer and split its tokens into head, gene runs and literals.

    Each gene owns the tokens that overlap it or the whitespace character before it; a token
    reaching into other text means the tokenizer merges genes with their surroundings, and
    then no constrained layout exists.
    """
    spans = _sample_spans(text, start, sentence, n_cells)
    enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    ids, offs = enc["input_ids"], enc["offset_mapping"]
    owner = [-1] * len(ids)
    for j, (_, a, b) in enumerate(spans):
        sep = text[a - 1] if a > 0 else ""
        if not sep.isspace():
            raise C2SError("A cell sentence in the answer template does not follow whitespace.")
        for t, (s, e) in enumerate(offs):
            if e > s and e > a - 1 and s < b:
                if owner[t] >= 0 or s < a - 1 or e > b:
                    raise C2SError(
                        "This tokenizer merges gene names with the text around them in this "
                        "task's answer, so its generation cannot be constrained token by token."
                    )
                owner[t] = j
    first_gene = next((t for t, o in enumerate(owner) if o >= 0), None)
    if first_gene is None or first_gene == 0:
        raise C2SError("The answer's genes produced no tokens of their own.")
    head = ids[:first_gene]
    runs: list[list[int]] = [[] for _ in spans]
    literal: list[list[int]] = [[] for _ in spans]  # tokens after gene j, before gene j + 1
    last = 0
    for t in range(first_gene, len(ids)):
        if owner[t] >= 0:
            if literal[last] and owner[t] == last:
                raise C2SError("Text splits a gene's tokens in this task's answer.")
            last = owner[t]
            runs[last].append(ids[t])
        else:
            literal[last].append(ids[t])
    literal[-1].append(tokenizer.eos_token_id)
    per_cell = len(sentence)
    seps: list[list[int]] = []
    keys: dict[str, tuple[str, str]] = {}  # trie (anchor, sep) of a cell's first / other genes
    for j, (c, a, _) in enumerate(spans):
        pos = j % per_cell
        if pos < per_cell - 1 and literal[j]:
            raise C2SError("Tokens between two genes of one cell are not whitespace.")
        if pos == per_cell - 1 and c < n_cells - 1:
            if not literal[j]:
                raise C2SError("Nothing separates the cells of this task's answer.")
            seps.append(literal[j])
        sep = text[a - 1]
        key = ("Cell sentence:", " ") if sep == " " else (text[max(start, a - 33) : a - 1], sep)
        role = keys.setdefault("first" if pos == 0 else "rest", key)
        if runs[j] != trie_for(*role).tokens_of(genes_idx[pos]):
            raise C2SError(
                "A gene's tokens in this task's answer differ from its tokens in isolation; "
                "generation cannot be constrained with this tokenizer."
            )
    return head, seps, literal[-1][0], keys


def cell_layout(
    tokenizer,
    prompts: Sequence[str],
    answer: Callable[[list[str]], str],
    genes: Sequence[str],
    n_cells: int,
    trie_for: Callable[[str, str], GeneTrie],
) -> CellLayout:
    """The :class:`CellLayout` of ``prompts`` whose answers ``answer(sentences)`` renders.

    Two sample answers with different genes are tokenized exactly as in training (``prompt +
    " " + answer`` and EOS); they must agree on every forced token. ``trie_for(anchor, sep)``
    returns the gene trie for genes after that text (cached by the caller).
    """
    if n_cells < 1:
        raise C2SError("n_cells must be at least 1.")
    base = trie_for("Cell sentence:", " ")
    usable = [g for g in range(len(genes)) if base.node_of[g] >= 0]
    if len(usable) < 4:
        raise C2SError("The model's vocabulary has fewer than 4 genes it can generate.")
    samples = [usable[:2], usable[2:4]]
    found = []
    for p, pair in ((prompts[0], samples[0]), (prompts[-1], samples[1])):
        sentence = [genes[g] for g in pair]
        text = f"{p} {answer([' '.join(sentence)] * n_cells)}"
        found.append(_read_layout(tokenizer, text, len(p) + 1, sentence, n_cells, pair, trie_for))
    if found[0][1:] != found[1][1:]:
        raise C2SError(
            "The text between generated cells tokenizes differently depending on the genes; "
            "generation cannot be constrained with this tokenizer."
        )
    head0, seps, end, keys = found[0]
    # Every prompt's own head: its tokens before the first gene of a sample answer (and the
    # whitespace that gene owns), from one batched tokenizer call.
    sample = " ".join(genes[g] for g in samples[0])
    texts = [f"{p} {answer([sample] * n_cells)}" for p in prompts]
    enc = tokenizer(texts, add_special_tokens=True, return_offsets_mapping=True)
    heads = []
    for p, text, ids, offs in zip(
        prompts, texts, enc["input_ids"], enc["offset_mapping"], strict=True
    ):
        a = text.find(sample, len(p) + 1) - 1  # the whitespace before the first gene
        n = next(t for t, (s, e) in enumerate(offs) if e > s and e > a)
        heads.append(ids[:n])
    if heads[0] != head0:
        raise C2SError("The prompt's tokens before the answer are not stable; cannot generate.")
    return CellLayout(heads, seps, end, trie_for(*keys["first"]), trie_for(*keys["rest"]))
