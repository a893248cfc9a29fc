"""Gene-constrained generation of cell sentences, one cell or several per prompt.

Every sampled token must continue a gene of the model's vocabulary that the current cell has
not used yet, so generated cells hold valid genes without repeats by construction, and each
stops at exactly ``n_genes`` genes. Where the genes and the forced text between cells go is
the :class:`~c2s.model.CellLayout` (``_layout.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from c2s._errors import C2SError
from c2s._logging import progress
from c2s._warn import warn_user
from c2s.model._batching import left_pad, length_batches, returned_cache, with_cache
from c2s.model._layout import CellLayout, GeneTrie
from c2s.model._ranks import gather, share
from c2s.model._sampling import row_keys, sample


class _Row:
    """Decoding state of one prompt: finished cells, the current cell's genes, its place in
    a trie, forced tokens still to feed."""

    __slots__ = ("cells", "done", "first", "force", "genes", "node", "seen", "used")

    def __init__(self, n_nodes: int):
        self.cells: list[list[int]] = []
        self.force: list[int] = []
        self.done = False
        self.used = np.zeros(n_nodes, dtype=np.int64)  # completed genes under each rest node
        self.new_cell()

    def new_cell(self) -> None:
        self.genes: list[int] = []
        self.seen: set[int] = set()
        self.used[:] = 0
        self.node = 0
        self.first = True

    def feed_forced(self) -> bool:
        """One forced token is fed; returns whether that ended the separator (a new cell
        starts: the caller reopens the row's root tokens)."""
        self.force.pop(0)
        if self.force:
            return False
        self.new_cell()
        return True

    def open_children(self, trie: GeneTrie, node: int) -> list[tuple[int, int]]:
        """(token, child) pairs leading to at least one gene this cell has not used."""
        if self.first:  # nothing is used yet at a cell's first gene
            return list(trie.children[node].items())
        return [(t, ch) for t, ch in trie.children[node].items() if self.used[ch] < trie.total[ch]]

    def complete(self, gene: int, rest: GeneTrie, root_ok, b: int, n_genes: int, layout) -> bool:
        """``gene`` is done: count it and close exhausted root branches of the rest trie (row
        ``b`` of ``root_ok``). Returns whether it completed the cell, which then queues the
        separator to the next cell (or ends the row after the last)."""
        self.genes.append(gene)
        self.seen.add(gene)
        node = int(rest.node_of[gene])
        for x in rest.path(node) if node >= 0 else ():
            self.used[x] += 1
            if rest.parent[x] == 0 and self.used[x] >= rest.total[x]:
                root_ok[b, rest.token[x]] = False
        self.node = 0
        self.first = False
        if len(self.genes) < n_genes:
            return False
        self.cells.append(self.genes)
        if len(self.cells) == layout.n_cells:
            self.done = True
        else:
            self.force = list(layout.seps[len(self.cells) - 1])
        return True


def generate_cells(
    model,
    layout: CellLayout,
    n_genes: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    batch_size: int = 8,
    progress_bar: bool | None = None,
    tokens: list | None = None,
) -> list[list[list[int]]]:
    """Sample ``layout.n_cells`` cells of exactly ``n_genes`` distinct, valid genes after each
    head of ``layout``, with the forced text between cells.

    Returns, per prompt, its cells as indices into the gene list the tries were built from.
    A list passed as ``tokens`` receives each prompt's full token sequence (head, then every
    token fed or chosen).
    """
    import torch

    _check_lengths(model.model, layout, n_genes)
    rules = _Rules(model, layout, n_genes)
    sampling = (temperature, top_k, top_p, seed)
    out: list[list[list[int]]] = [[] for _ in layout.heads]
    if tokens is not None:
        tokens[:] = [[] for _ in layout.heads]
    with torch.inference_mode():
        batches = share(length_batches([len(h) for h in layout.heads], batch_size))
        for rows in progress(batches, desc="generating cells", unit="batch", enabled=progress_bar):
            cells, fed = _generate_batch(model, rules, rows, sampling)
            for b, i in enumerate(rows):
                out[i] = cells[b]
                if tokens is not None:
                    tokens[i] = fed[b]
    if tokens is not None:
        tokens[:] = gather(tokens, batches)
    return gather(out, batches)


def _check_lengths(lm, layout: CellLayout, n_genes: int) -> None:
    """Refuse a gene count the vocabulary or the model's context cannot hold; warn when the
    longest genes could pass the context."""
    first, rest = layout.first, layout.rest
    if n_genes < 1:
        raise C2SError("n_genes must be at least 1.")
    if n_genes > rest.n_genes:
        raise C2SError(
            f"Cannot generate {n_genes} distinct genes from a vocabulary of {rest.n_genes}."
        )
    fixed = max(len(h) for h in layout.heads) + sum(len(s) for s in layout.seps)
    least = fixed + layout.n_cells * n_genes
    most = fixed + layout.n_cells * n_genes * max(first.depth, rest.depth)
    context = getattr(lm.config, "max_position_embeddings", None)
    if context and least > context:
        raise C2SError(
            f"{layout.n_cells} cell(s) of {n_genes} genes need at least {least} tokens, more "
            f"than the model's context of {context}. Ask for fewer genes or cells."
        )
    if context and most > context:
        warn_user(
            f"{layout.n_cells} cell(s) of {n_genes} genes may need up to {most} tokens, more "
            f"than the model's context of {context}, if the longest genes are drawn.",
        )


class _Rules:
    """What each row of a batch may sample next (:meth:`allowed`), and what a sampled token
    does to its state (:meth:`advance`): genes from the layout's tries, none repeated, the
    forced text between cells, padding once a row is done."""

    def __init__(self, model, layout: CellLayout, n_genes: int):
        import torch

        self.layout, self.n_genes = layout, n_genes
        self.first, self.rest = layout.first, layout.rest
        self.pad, dev = model.tokenizer.pad_token_id, model.device
        self.vocab = model.model.get_output_embeddings().weight.shape[0]
        self.rest_root = torch.zeros(self.vocab, dtype=torch.bool, device=dev)
        self.rest_root[torch.as_tensor(self.rest.root_tokens, device=dev)] = True
        self.first_root = torch.zeros(self.vocab, dtype=torch.bool, device=dev)
        self.first_root[torch.as_tensor(self.first.root_tokens, device=dev)] = True

    def allowed(self, state: list[_Row], root_ok):
        """(rows x vocabulary) mask of the tokens each row may take next."""
        import torch

        allowed = torch.zeros((len(state), self.vocab), dtype=torch.bool, device=root_ok.device)
        for b, st in enumerate(state):
            if st.done:
                allowed[b, self.pad] = True
            elif st.force:
                allowed[b, st.force[0]] = True
            elif st.node == 0:
                allowed[b] = self.first_root if st.first else root_ok[b]
            else:
                trie = self.first if st.first else self.rest
                for t, _ in st.open_children(trie, st.node):
                    allowed[b, t] = True
                g = int(trie.terminal[st.node])
                if g >= 0 and g not in st.seen:  # may end this gene here
                    if len(st.genes) + 1 >= self.n_genes:
                        allowed[b, self.layout.after(len(st.cells))] = True
                    else:
                        allowed[b] |= root_ok[b]
        return allowed

    def advance(self, state: list[_Row], choice, root_ok, fed: list[list[int]]) -> list[int]:
        """Feed each row its sampled token (``fed`` records them); returns the tokens to
        feed the model next (padding for finished rows)."""
        rest, n_genes, layout = self.rest, self.n_genes, self.layout
        feed = []
        for b, st in enumerate(state):
            t = int(choice[b])
            if st.done:
                feed.append(self.pad)
                continue
            feed.append(t)
            fed[b].append(t)
            if st.force:
                if st.feed_forced():
                    root_ok[b] = self.rest_root
                continue
            trie = self.first if st.first else rest
            if st.node != 0 and t not in trie.children[st.node]:
                # the gene ended here; t starts the next gene, or is the text after it
                if st.complete(int(trie.terminal[st.node]), rest, root_ok, b, n_genes, layout):
                    if st.force and st.feed_forced():  # t began the separator
                        root_ok[b] = self.rest_root
                    continue
                trie = rest
            st.node = node = trie.children[st.node][t]
            g = int(trie.terminal[node])
            if g >= 0 and g not in st.seen and not st.open_children(trie, node):
                st.complete(g, rest, root_ok, b, n_genes, layout)
        return feed


def _generate_batch(model, rules: _Rules, rows: list[int], sampling: tuple):
    """Decode the heads ``rows`` of the layout together to their last cell; returns each
    row's cells and the tokens fed."""
    import torch

    lm, dev, heads = model.model, model.device, rules.layout.heads
    temperature, top_k, top_p, seed = sampling
    enc = left_pad([heads[i] for i in rows], rules.pad, dev)
    res = lm(**enc, use_cache=True, logits_to_keep=1)
    cache, logits = returned_cache(res), res.logits[:, -1]
    mask, pos = enc["attention_mask"], enc["position_ids"][:, -1:]
    root_ok = rules.rest_root.repeat(len(rows), 1)
    state = [_Row(rules.rest.n_nodes) for _ in rows]
    fed: list[list[int]] = [list(heads[i]) for i in rows]
    step = 0
    while True:
        allowed = rules.allowed(state, root_ok)
        keys = row_keys(seed, rows, step) if temperature > 0 else []
        choice = sample(
            logits.masked_fill(~allowed, float("-inf")), temperature, top_k, top_p, keys
        )
        step += 1
        feed = rules.advance(state, choice, root_ok, fed)
        if all(s.done for s in state):
            break
        mask = torch.cat([mask, mask.new_ones((len(rows), 1))], 1)
        pos = pos + 1
        res = lm(
            input_ids=torch.as_tensor(feed, device=dev)[:, None],
            attention_mask=mask,
            position_ids=pos,
            **with_cache(lm, cache),
            use_cache=True,
        )
        cache, logits = returned_cache(res), res.logits[:, -1]
    return [st.cells for st in state], fed


def generate_genes(
    model, prompts: Sequence[str], trie: GeneTrie, n_genes: int, **options
) -> list[list[int]]:
    """Sample exactly ``n_genes`` distinct, valid genes right after each prompt's tokens
    (one cell per prompt, every gene from ``trie``; EOS closes the last gene). ``options``:
    the sampling and batching keywords of :func:`generate_cells` (``temperature``,
    ``top_k``, ``top_p``, ``seed``, ``batch_size``, ``progress_bar``).

    Returns, per prompt, indices into the gene list the trie was built from.
    """
    layout = CellLayout.plain(model.tokenizer, prompts, trie)
    return [c[0] for c in generate_cells(model, layout, n_genes, **options)]
