"""The ``c2s`` command line: one entry point, one module per subcommand.

Each subcommand module has ``register(subparsers)`` and ``run(args) -> int``; heavy imports
happen inside ``run``. ``main(argv)`` is callable from tests.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings

from c2s._version import __version__

_COMMANDS = (
    "convert",
    "info",
    "inverse",
    "export",
    "import_reference",
    "prompt",
    "train",
    "run_model",
    "evaluate",
    "quickstart",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="c2s",
        description="Cell sentences for single-cell analysis with language models.",
    )
    parser.add_argument("--version", action="version", version=f"c2s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMANDS:
        importlib.import_module(f"c2s.cli._{name}").register(sub)
    return parser


def _warning_to_stderr(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    from c2s._errors import C2SError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    warnings.showwarning = _warning_to_stderr
    try:
        return int(args.run(args) or 0)
    except C2SError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted: no partial output was left; run the same command again.", file=sys.stderr
        )
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
