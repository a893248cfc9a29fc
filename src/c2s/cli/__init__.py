"""The ``c2s`` command line: one entry point, one module per subcommand.

Each subcommand module has ``register(subparsers)`` and ``run(args) -> int``. ``register``
reads the command's flags off the verb it runs (its signature and docstring), so it imports
the verb's package: ``c2s predict --help`` imports :mod:`c2s.tl` (about 1 s, mostly pandas),
``c2s info --help`` about 0.1 s. :func:`build_parser` registers only the module of the
subcommand named on the command line, and what the verb runs on (torch, the model) is
imported inside ``run``. ``main(argv)`` is callable from tests.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import re
import signal
import sys
import threading
import warnings

from c2s.cli import _flags as flags

# subcommand module -> the verbs it registers
_COMMANDS = {
    "convert": ("convert",),
    "info": ("info",),
    "inverse": ("inverse",),
    "export": ("export",),
    "import_reference": ("import-reference",),
    "prompt": ("prompt",),
    "train": ("train",),
    "align": ("align",),
    "run_model": ("predict", "embed", "generate", "perturb", "describe"),
    "screen": ("screen",),
    "evaluate": ("evaluate",),
    "quickstart": ("quickstart",),
    "serve": ("serve",),
}


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (``verb``) one holding only the module that registers ``verb``:
    a command then pays for its own options alone (``train``'s pull in its config)."""
    import importlib

    parser = _Parser(
        prog="c2s",
        description="Cell sentences for single-cell analysis with language models.",
        epilog="Exit status: 0 success; 1 an unexpected error (a bug: rerun with --debug and "
        "report the traceback); 2 bad input or options, a missing optional dependency, a "
        "file that cannot be read or written, or a full disk (the message says what to "
        "change); 130 interrupted (Ctrl-C), 143 stopped by SIGTERM (129: SIGHUP); an "
        "interrupted command leaves no partial output.",
    )
    flags.add_globals(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, verbs in _COMMANDS.items():
        if verb is not None and verb not in verbs:
            continue
        importlib.import_module(f"c2s.cli._{name}").register(sub)
    for p in _subparsers(parser):  # --debug is also accepted after the subcommand
        if p is not parser:
            flags.add_debug(p)
    return parser


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, like every other error (exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def _subparsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for p in action.choices.values():
                yield from _subparsers(p)


def _warning_to_stderr(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status: 0 ok, 1 unexpected error, 2 bad input (or a
    missing optional dependency, a file that cannot be read or written, a full disk), 130
    interrupted, 128 + the signal's number when stopped by SIGTERM or SIGHUP (which stop it
    as Ctrl-C does: what it was writing is removed). Every error is one line on stderr;
    ``--debug`` adds the traceback."""
    parser = build_parser(_verb(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error already printed
        return e.code if isinstance(e.code, int) else 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    warnings.showwarning = _warning_to_stderr
    flags.warn_renamed_flags(args)
    with _stop_signals_interrupt() as received:
        status = _run(args)
    if status == 130 and received:
        return 128 + received[0]
    return status


def _run(args) -> int:
    from c2s._errors import C2SError

    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print(
            "interrupted: no partial output was left; run the same command again.", file=sys.stderr
        )
        return 130
    except BrokenPipeError:
        # the reader went away (``c2s info DS | head``): nothing more to say, nothing wrong
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as e:
        _traceback(args)
        full = _disk_full(e)
        if full is not None:
            print(
                f"error: the disk is full or a file size limit was reached ({full}). Free "
                "some space (or raise the limit) and run the command again.",
                file=sys.stderr,
            )
            return 2
        if isinstance(e, C2SError | ImportError | OSError):
            print(f"error: {_one_line(e)}", file=sys.stderr)
            return 2
        print(
            f"error: unexpected {type(e).__name__}: {_one_line(e)}. This is likely a bug in "
            "c2s: rerun with --debug for the traceback and report it.",
            file=sys.stderr,
        )
        return 1


@contextlib.contextmanager
def _stop_signals_interrupt():
    """SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread, so that a command they
    stop cleans up as after Ctrl-C (removes its temporaries, releases its locks); yields the
    signals received. A signal the caller ignores (``nohup``) stays ignored."""
    received: list[int] = []

    def stop(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:
                previous[sig] = signal.signal(sig, stop)
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# errno values and messages (from libraries that drop the errno) of a write the disk refused
_DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DISK_MESSAGES = re.compile(
    r"no space left on device|file too large|disk quota exceeded|os error (?:27|28|122)\b"
    r"|\d+ requested and \d+ written"  # numpy's tofile
    r"|pytorchstreamwriter|unexpected pos \d+ vs \d+",  # torch.save
    re.IGNORECASE,
)


def _disk_full(e: BaseException) -> str | None:
    """What a write the disk (or a file size limit) refused said, found in ``e`` or the
    errors it came from; None when ``e`` is another error."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if (isinstance(e, OSError) and e.errno in _DISK_ERRNOS) or _DISK_MESSAGES.search(str(e)):
            text = _one_line(e)
            return text if len(text) <= 200 else text[:200] + "..."
        e = e.__cause__ or e.__context__
    return None


def _verb(argv: list[str]) -> str | None:
    """The subcommand named on the command line, when it is a known one (global options
    before it take no values)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    known = {v for verbs in _COMMANDS.values() for v in verbs}
    return first if first in known else None


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _traceback(args) -> None:
    if getattr(args, "debug", False):
        import traceback

        traceback.print_exc(file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
