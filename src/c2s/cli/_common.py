"""Small helpers shared by subcommands."""

from __future__ import annotations

import json
import sys


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


def interrupted(out, *, replacing: bool = False) -> int:
    """Say what an interrupted training run left (the previous run it was to replace, or
    checkpoints to resume from, or nothing) and how to go on; exit status 130."""
    from pathlib import Path

    if replacing:
        say = f"the new run was discarded; {out} holds the previous run, unchanged."
    elif any(Path(out, "checkpoints").glob("checkpoint-*")):
        say = (
            f"checkpoints so far are in {out}/checkpoints; continue with the same command "
            "plus --resume latest."
        )
    else:
        say = "no partial output was left; run the same command again."
    print(f"interrupted: {say}", file=sys.stderr)
    return 130
