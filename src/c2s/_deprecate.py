"""Old spellings kept for one release: a renamed keyword argument still works, with a
``FutureWarning`` that names the new one."""

from __future__ import annotations

import functools

from c2s._errors import C2SError
from c2s._warn import warn_user


def renamed(**old_to_new: str):
    """Decorator: ``@renamed(top_k="n_genes")`` accepts ``top_k=`` as ``n_genes=`` (warned);
    both at once is an error."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise C2SError(f"Give {new}= only ({old}= is its old name).")
                    warn_renamed(f"{old}=", f"{new}=")
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return inner

    return wrap


def warn_renamed(old: str, new: str) -> None:
    """The one warning for an old name (a keyword, a flag, a function), at the first frame
    outside c2s (:func:`c2s._warn.warn_user`)."""
    warn_user(f"{old} is now called {new}; the old name goes in the next release.", FutureWarning)
