"""Batching concurrent requests: requests that queue while the model is busy, or (under
concurrent load) arrive within a few milliseconds of each other, and ask the same verb with
the same options become one call of the ``c2s.tl`` verb (the model sees one batch stream),
and each gets its own rows back.

Requests are ranked in their own threads first (as the verb would rank them alone, with
seed 0), so a batched request gets exactly the cell sentences it would get alone.
"""

import concurrent.futures
import queue
import threading
import time
import warnings

import numpy as np
import pandas as pd

from c2s._errors import C2SError

DEFAULT_WINDOW_MS = 10.0  # how long the first request of a batch waits for company


class Batcher:
    """One thread that runs the model; ``submit`` blocks until the request's rows are in."""

    def __init__(self, model, *, max_cells: int, window: float = DEFAULT_WINDOW_MS / 1000):
        self.model, self.max_cells, self.window = model, max_cells, window
        self.calls = 0  # verb calls made (fewer than requests when batching happened)
        self.requests = 0
        self._shared = False  # the last batch held more than one request
        self._q: queue.Queue = queue.Queue()
        threading.Thread(target=self._loop, name="c2s-batcher", daemon=True).start()

    def submit(self, fn, kw: dict, texts: list[str], index) -> tuple[pd.DataFrame, list[str]]:
        """The verb's result rows for these cell sentences (indexed by ``index``) and the
        warnings of the batch they ran in; the verb's own errors are raised here. Cells with
        no gene are left out here, with a warning naming this request's own cells."""
        keep = [i for i, t in enumerate(texts) if t.strip()]
        if not keep:
            raise C2SError("No cell of the request expresses any gene; there is nothing to run on.")
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._q.put((fn, tuple(sorted(kw.items())), [texts[i] for i in keep], index[keep], fut))
        rows, msgs = fut.result()
        if len(keep) == len(texts):
            return rows, msgs
        empty = index.delete(keep)
        ids = ", ".join(map(str, empty[:5]))
        note = (f"{len(empty)} cells express no gene and are left out (their results are "
                f"missing): {ids}{' ...' if len(empty) > 5 else ''}.")  # fmt: skip
        pos = np.full(len(texts), -1)
        pos[keep] = np.arange(len(keep))
        out = rows.reset_index(drop=True).reindex(pos)  # by position: ids may repeat
        out.index = index
        return out, [note, *msgs]

    def _loop(self) -> None:
        while True:
            items = [self._q.get()]
            # wait for company only under concurrent load: a lone client is answered at once
            deadline = time.monotonic() + (self.window if self._shared else 0.0)
            while sum(len(it[2]) for it in items) < self.max_cells:
                try:  # requests that queued while the model was busy join at once
                    items.append(self._q.get_nowait())
                    continue
                except queue.Empty:
                    pass
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    items.append(self._q.get(timeout=left))
                except queue.Empty:
                    break
            self._shared = len(items) > 1
            groups: dict = {}
            for it in items:
                groups.setdefault((it[0], it[1]), []).append(it)
            for (fn, kw), group in groups.items():
                self._run(fn, dict(kw), group)

    def _run(self, fn, kw: dict, group: list) -> None:
        from c2s.sentences import CellSentences

        texts = [t for it in group for t in it[2]]
        keys = [[f"{j}:{i}" for i in range(len(it[2]))] for j, it in enumerate(group)]
        obs = pd.DataFrame(index=pd.Index([k for ks in keys for k in ks]))
        self.requests += len(group)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                cs = CellSentences.from_text(texts, obs=obs)
                frame = fn(cs, self.model, inplace=False, progress_bar=False, **kw)
            except BaseException as e:  # the requests' threads raise it
                for it in group:
                    it[4].set_exception(e)
                return
        self.calls += 1
        msgs = sorted({str(w.message) for w in caught})
        for ks, it in zip(keys, group, strict=True):
            rows = frame.reindex(ks)
            rows.index = it[3]
            it[4].set_result((rows, msgs))
