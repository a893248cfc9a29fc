"""Small helpers shared by subcommands."""

from __future__ import annotations

import json
import sys


def add_json(parser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout (and nothing else)"
    )


def emit(obj: dict, as_json: bool, human: str) -> None:
    """Print ``obj`` as JSON with ``--json``, else the human-readable text."""
    if as_json:
        json.dump(obj, sys.stdout, default=_default, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print(human)


def _default(o):
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
