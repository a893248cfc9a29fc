"""Batching concurrent requests: requests that queue while the model is busy, or (under
concurrent load) arrive within a few milliseconds of each other, and ask the same verb with
the same options share the model. Their cells run through the ``c2s.tl`` verb in shared calls
of at most ``CALL_CELLS`` cells (a request alone runs in one call), and each request gets its
own rows back.

Work nobody waits for any more (timed out, or the client went away) stops at the next model
batch: a call whose requests are all abandoned stops inside the verb (``stop_when``), and the
cells of abandoned requests are left out of the calls that follow, so the requests they shared
the model with still get their answers.

A request hears only about its own cells. Cells with genes the model never saw (the one
warning the verb gives about the cells themselves; their gene names were warned about when
they were ranked) run in calls of their own; a shared call that warns or fails anyway is run
again one request at a time, so no message about one client's cells reaches another. Multi-cell tasks (prompts of several cells) run each request whole.

Requests are ranked in their own threads first (as the verb would rank them alone, with
seed 0), so a batched request gets exactly the cell sentences it would get alone. The batch
carries them as integer sentences (gene ids); a shared call joins its requests' cells under
one vocabulary of the genes' display names, the names a cell's sentence is written with.
"""

import concurrent.futures
import queue
import threading
import time

import numpy as np
import pandas as pd

from c2s._errors import C2SError
from c2s._logging import Stopped, stop_when
from c2s.serve._warnings import captured

DEFAULT_WINDOW_MS = 10.0  # how long the first request of a batch waits for company
CALL_CELLS = 64  # cells per shared verb call: 8 model batches of the verbs' default size


class Ticket:
    """One request's cells in the model thread's queue. ``future`` gives ``(result,
    warnings)``; cancelling it abandons the request (its cells not run yet never are)."""

    def __init__(self, fn, kw: dict, cells, index, keep: list[int], solo: bool, said: list[str]):
        self.fn, self.kw = fn, kw
        self.key = (fn, tuple(sorted(kw.items())))
        self.index = index  # all the request's cells
        self.keep = keep  # positions of those with a gene: the ones run
        self.cells = cells.take(keep)  # their sentences (CellSentences)
        self.n = len(keep)
        self.solo = solo  # shares no verb call with another request
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        self.done = 0  # cells run so far
        self._parts: list = []
        self._warnings: set[str] = set(said)  # about its cells before they were batched

    @property
    def over(self) -> bool:
        """Answered, failed or abandoned: nothing more to run."""
        return self.future.done()

    def add(self, part, msgs: set[str], stop: int) -> None:
        self._parts.append(part)
        self._warnings |= msgs
        self.done = stop
        if self.done == self.n:
            self._settle(result=self._result())

    def fail(self, error: BaseException) -> None:
        self._settle(error=error)

    def _result(self) -> tuple:
        """The verb's result for every cell of the request (none for cells with no gene, in
        their place: by position, as ids may repeat) and the warnings about them."""
        parts = self._parts
        result = parts[0] if len(parts) == 1 else type(parts[0]).concat(parts)
        msgs = sorted(self._warnings)
        if len(self.keep) == len(self.index):
            return result, msgs
        empty = self.index.delete(self.keep)
        ids = ", ".join(map(str, empty[:5]))
        note = (
            f"{len(empty)} cells express no gene and are left out (their results are "
            f"missing): {ids}{' ...' if len(empty) > 5 else ''}."
        )
        rows = np.full(len(self.index), -1)
        rows[self.keep] = np.arange(len(self.keep))
        return result.expand(rows, self.index), [note, *msgs]

    def _settle(self, result=None, error=None) -> None:
        try:
            if error is None:
                self.future.set_result(result)
            else:
                self.future.set_exception(error)
        except concurrent.futures.InvalidStateError:  # abandoned meanwhile: nobody listens
            pass


class Batcher:
    """One thread that runs the model on the requests' tickets."""

    def __init__(self, model, *, max_cells: int, window: float = DEFAULT_WINDOW_MS / 1000):
        self.model, self.max_cells, self.window = model, max_cells, window
        self.calls = 0  # batches run (fewer than requests when requests shared the model)
        self.verb_calls = 0  # calls of the verb (shared ones at most CALL_CELLS cells)
        self.requests = 0
        self._shared = False  # the last batch held more than one request
        genes = model.config.genes
        self._known = np.asarray(genes, dtype=str) if genes else None
        self._q: queue.Queue = queue.Queue()
        threading.Thread(target=self._loop, name="c2s-batcher", daemon=True).start()

    def ticket(self, fn, kw: dict, cells, index, said=()) -> Ticket:
        """A ticket for these cells (:class:`~c2s.sentences.CellSentences`, ranked as the verb
        would rank them; indexed by ``index``), not queued yet; made in the request's own
        thread, with the warnings ``said`` about its cells so far. Cells with no gene are left
        out, with a warning naming this request's own cells; a request of only such cells is an
        error."""
        keep = np.flatnonzero(cells.lengths > 0).tolist()
        if not keep:
            raise C2SError("No cell of the request expresses any gene; there is nothing to run on.")
        ticket = Ticket(fn, kw, cells, index, keep, False, list(said))
        ticket.solo = self._speaks_of(ticket.cells)
        return ticket

    def put(self, ticket: Ticket) -> concurrent.futures.Future:
        """Queue the ticket; its future gives ``(result, warnings)``: the verb's result for the
        request's cells and the warnings about them."""
        self._q.put(ticket)
        return ticket.future

    def _speaks_of(self, cells) -> bool:
        """Whether the verb would warn about these cells themselves: genes the model never
        saw (their names, read when they were ranked, were warned about then). Such cells
        share no call with other requests'."""
        names = np.unique(cells.vocab.display_names[cells.genes].astype(str))
        return self._known is not None and not np.isin(names, self._known).all()

    def _loop(self) -> None:
        while True:
            items = [self._q.get()]
            # wait for company only under concurrent load: a lone client is answered at once
            deadline = time.monotonic() + (self.window if self._shared else 0.0)
            while sum(it.n for it in items) < self.max_cells:
                try:  # requests that queued while the model was busy join at once
                    it = self._q.get_nowait()
                except queue.Empty:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        it = self._q.get(timeout=left)
                    except queue.Empty:
                        break
                items.append(it)
            items = [it for it in items if not it.over]
            self._shared = len(items) > 1
            groups: dict = {}
            for it in items:
                groups.setdefault(it.key, []).append(it)
            for group in groups.values():
                try:
                    self._run(group)
                except Exception as e:  # a fault here must not stop the model thread
                    for t in group:
                        t.fail(e)

    def _run(self, group: list[Ticket]) -> None:
        """Every cell of the group's tickets, in request order."""
        self.requests += len(group)
        self.calls += 1
        fn, kw = group[0].fn, dict(group[0].kw)
        whole = not _single_cell(kw.get("task", "cell_type_prediction"))
        pending = group
        while pending := [t for t in pending if not t.over]:
            if whole:
                self._call(fn, kw, [(pending[0], 0, pending[0].n)])
                continue
            # a request alone in its call runs whole: the verb itself stops at its next model
            # batch once it is abandoned; shared calls are cut so a live request's batch-mates
            # drop out soon after they are abandoned
            alone = len(pending) == 1 or pending[0].solo
            parts, n = [], 0
            for t in pending:
                if parts and (t.solo or parts[0][0].solo):
                    break
                left = t.n - t.done
                take = left if alone else min(CALL_CELLS - n, left)
                parts.append((t, t.done, t.done + take))
                n += take
                if alone or n == CALL_CELLS:
                    break
            if len(parts) == 1:
                self._call(fn, kw, parts)
            elif not self._call(fn, kw, parts, shared=True):
                for t in pending:  # this batch's options or cells draw warnings: stop mixing it
                    t.solo = True
                for part in parts:
                    if not part[0].over:
                        self._call(fn, kw, [part])

    def _call(self, fn, kw: dict, parts: list, shared: bool = False) -> bool:
        """One verb call on the cells ``(ticket, start, stop)`` of ``parts``, rows handed to
        their tickets; it stops at its next model batch once all of them are abandoned. A
        shared call that warns or fails hands nothing (False): what it says may concern any of
        its requests' cells."""
        keys = [f"{j}:{i}" for j, (_, a, b) in enumerate(parts) for i in range(a, b)]
        error = None
        with captured() as caught, stop_when(lambda: all(t.over for t, _, _ in parts)):
            try:
                cells = joined(parts, keys)
                result = fn(cells, self.model, inplace=False, progress_bar=False, **kw)
            except Stopped:  # nobody waits for these cells
                return True
            except Exception as e:
                if shared:
                    return False
                error = e
            except BaseException as e:  # the requests' threads raise it
                error = e
        self.verb_calls += 1
        msgs = set(caught)
        if error is not None:
            for t, _, _ in parts:
                t.fail(error)
            return True
        if shared and msgs:
            return False
        for j, (t, a, b) in enumerate(parts):
            rows = result.index.get_indexer([f"{j}:{i}" for i in range(a, b)])
            t.add(result.expand(rows, t.index[t.keep[a:b]]), msgs, b)
        return True


def joined(parts: list, keys: list[str]):
    """The cells ``(ticket, start, stop)`` of ``parts`` as one
    :class:`~c2s.sentences.CellSentences` indexed by ``keys``: each gene under its display
    name (the name its sentence is written with), the vocabulary in order of first appearance
    and its cells-expressed counts, as :meth:`CellSentences.from_text` reads the sentences."""
    from c2s.sentences import CellSentences, Vocab

    names, lengths = [], []
    for t, a, b in parts:
        cs = t.cells
        names.append(cs.vocab.display_names[cs.genes[cs.offsets[a] : cs.offsets[b]]])
        lengths.append(cs.lengths[a:b])
    flat = np.concatenate(names) if names else np.zeros(0, dtype=object)
    codes, uniques = pd.factorize(pd.Index(flat, dtype=object), sort=False)
    lens = np.concatenate(lengths).astype(np.int64)
    offsets = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    vocab = Vocab.from_names(list(uniques))
    if len(codes):
        cell_of = np.repeat(np.arange(len(lens)), lens)
        pairs = np.unique(cell_of * len(vocab) + codes)
        vocab.n_cells_expressed = np.bincount(pairs % len(vocab), minlength=len(vocab))
    obs = pd.DataFrame(index=pd.Index(keys))
    return CellSentences(codes.astype(np.int32), offsets, vocab, obs)


def _single_cell(task: str) -> bool:
    """Whether ``task`` prompts one cell at a time (so its cells can be split into batches)."""
    from c2s.prompts import get_task

    try:
        return get_task(task).kind == "single"
    except C2SError:  # the verb says what is wrong with it
        return False
