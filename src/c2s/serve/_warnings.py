"""Warnings caught per thread. ``warnings.catch_warnings`` swaps process-wide state, so in a
server whose threads each work for a different client it would hand one thread's warnings
(naming one client's genes) to another. While any thread captures, every warning goes to the
innermost capture of the thread that raised it, and a thread that captures nothing has its
warnings shown as usual.
"""

import contextlib
import threading
import warnings

_lock = threading.Lock()
_logs: dict[int, list[list[str]]] = {}  # thread -> its open captures, innermost last
_state: list = []  # the catch_warnings that holds the process-wide state while any capture is open


@contextlib.contextmanager
def captured():
    """The messages of every warning this thread raises within the block (each time, no
    once-per-place filtering), in order."""
    me, log = threading.get_ident(), []
    with _lock:
        if not _logs:
            saved = warnings.catch_warnings()
            saved.__enter__()
            warnings.simplefilter("always")
            shown = warnings.showwarning
            warnings.showwarning = lambda *a, **k: _route(shown, *a, **k)
            _state.append(saved)
        _logs.setdefault(me, []).append(log)
    try:
        yield log
    finally:
        with _lock:
            stack = _logs[me]
            stack.pop()
            if not stack:
                del _logs[me]
            if not _logs:
                _state.pop().__exit__(None, None, None)


def _route(shown, message, category, filename, lineno, file=None, line=None):
    stack = _logs.get(threading.get_ident())
    if stack:
        stack[-1].append(str(message))
    else:
        shown(message, category, filename, lineno, file, line)
