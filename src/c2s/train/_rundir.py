"""The run directory: what may be replaced or resumed, checkpoints, the split used, logs,
and the finished model (``c2s_config.json`` moved in last: its presence marks a finished
run). Under torchrun / accelerate launch only the main process touches it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from c2s._atomic import (
    MARKER,
    TMP_PREFIX,
    check_not_input,
    foreign_entry,
    output_kind,
    output_lock,
    place,
    tmp_sibling,
    write_marker,
)
from c2s._errors import C2SError, OutputExistsError
from c2s._logging import get_logger
from c2s._warn import warn_user
from c2s.model import CONFIG_FILE
from c2s.train._config import TrainConfig

log = get_logger(__name__)

CHECKPOINTS = "checkpoints"


def check_run_dir(
    out: str | os.PathLike, *, overwrite: bool, resume: str | None, inputs: Iterable = ()
) -> None:
    """Refuse a run directory that would lose work: one that is, contains or lies inside an
    input (the dataset, the model trained from), a directory c2s did not make, a finished
    run without ``overwrite``, an interrupted run without ``resume`` or ``overwrite``, a
    resume with nothing to resume."""
    out = Path(out)
    check_not_input(out, inputs)
    if not out.exists():
        if resume:
            raise C2SError(f"Nothing to resume: {out} does not exist.")
        return
    kind = output_kind(out)
    if kind not in ("run", "model"):
        foreign = foreign_entry(out)
        what = f"holds {foreign!r}, which c2s does not write there" if foreign else "exists"
        raise C2SError(
            f"{str(out)!r} {what}: it is not a training run c2s made, so c2s will neither "
            "resume nor replace it (c2s only replaces outputs it wrote itself). Choose "
            "another --out."
        )
    finished = (out / CONFIG_FILE).exists()
    if resume:
        if finished:
            raise C2SError(
                f"{out} holds a finished run; resume continues interrupted runs. Train into a "
                "new directory (or pass --overwrite to start over)."
            )
        return
    if overwrite:
        return
    if finished:
        raise OutputExistsError(
            f"Output {str(out)!r} already exists. Choose another path, or pass "
            "overwrite=True (--overwrite) to replace it."
        )
    raise OutputExistsError(
        f"{out} holds an interrupted training run. Pass resume='latest' (--resume latest) "
        "to continue it, or overwrite=True (--overwrite) to start over."
    )


def work_dir_for(out: Path, *, resume: str | None) -> Path:
    """Where a run writes: ``out`` itself, or, when it replaces an existing run, a hidden
    sibling that takes ``out``'s place only when the run completes (the previous run stays
    untouched until then). The name is fixed, so every process of a DDP job agrees on it."""
    if out.exists() and not resume:
        return tmp_sibling(out, tag="new-run")
    return out


@contextlib.contextmanager
def run_dir_lock(out: Path):
    """One training process (rank 0) writes a run directory at a time."""
    if not is_main_process():
        yield
        return
    with output_lock(out):
        yield


@contextlib.contextmanager
def run_dir(out: Path, *, overwrite: bool, resume: str | None, inputs: Iterable = ()):
    """A training run's directory, from the refusals to the end: yields where to write
    (``out``, or a hidden sibling that takes ``out``'s place only when the block completes;
    on failure the sibling is removed and the previous run stays; a new run that fails
    before its first checkpoint leaves nothing). Under torchrun only the main process checks
    and prepares it (the others would see it half-made)."""
    main = is_main_process()
    if main:
        check_run_dir(out, overwrite=overwrite, resume=resume, inputs=inputs)
    with run_dir_lock(out):
        if main:  # again: a stopped run's leftovers were cleared with the lock
            check_run_dir(out, overwrite=overwrite, resume=resume, inputs=inputs)
        new = not out.exists()
        work = work_dir_for(out, resume=resume)
        if main and work != out and work.exists():  # c2s's own name, under the lock
            shutil.rmtree(work)
            warn_user(
                f"Removed {work.name!r}, an unfinished replacement of {str(out)!r} left by a "
                "training run that was stopped.",
            )
        try:
            yield work
        except BaseException:
            finish_run_dir(work, out, ok=False)
            if main and work == out:
                drop_unfinished_checkpoints(out / CHECKPOINTS)
                if new and latest_checkpoint(out / CHECKPOINTS) is None:
                    shutil.rmtree(out, ignore_errors=True)  # nothing to resume
            raise
        finish_run_dir(work, out, ok=True)


def make_run_dir(path: Path) -> None:
    """Create the run directory (rank 0), marked as a c2s run."""
    path.mkdir(parents=True, exist_ok=True)
    if output_kind(path) is None:
        write_marker(path, "run")


def finish_run_dir(work: Path, out: Path, *, ok: bool) -> None:
    """Put a replacing run in place (``ok``), or remove it and leave the previous one."""
    if work == out or not is_main_process():
        return
    if ok:
        place(work, out, overwrite=True, kind="run")
    else:
        shutil.rmtree(work, ignore_errors=True)


def is_main_process() -> bool:
    """Rank 0 of a torchrun / accelerate launch job (or a single process)."""
    return int(os.environ.get("RANK", "0")) == 0


def drop_unfinished_checkpoints(ckpt_dir: Path) -> None:
    """Remove the checkpoint a stopped or failed run was writing: the Trainer writes
    ``trainer_state.json`` last, and resuming from a checkpoint without it fails."""
    for p in ckpt_dir.glob("checkpoint-*"):
        if p.is_dir() and not (p / "trainer_state.json").is_file():
            shutil.rmtree(p, ignore_errors=True)


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    found = []
    for p in ckpt_dir.glob("checkpoint-*"):
        try:
            found.append((int(p.name.split("-")[-1]), p))
        except ValueError:
            continue
    return max(found)[1] if found else None


def write_split(path: Path, ds, cfg: TrainConfig) -> None:
    idx = ds.split_indices()
    split_meta = ds.meta.get("split", {})
    payload = {
        "dataset": str(ds.path),
        "seed": split_meta.get("seed"),
        "fractions": split_meta.get("fractions"),
        "train_split": cfg.train_split,
        "eval_split": cfg.eval_split,
        **{k: v.tolist() for k, v in idx.items()},
    }
    write_json(path, payload)


def write_json(path: Path, obj) -> None:
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}")
    tmp.write_text(json.dumps(obj, indent=1, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(o):
    if isinstance(o, np.integer | np.floating):
        return o.item()
    return str(o)


def save_run(model, run_dir: Path, train_log: dict, *, merge: bool) -> None:
    """A finished run's last files: ``train_log.json``, then the model (``c2s_config.json``
    moved in last: it marks the run finished)."""
    write_json(run_dir / "train_log.json", train_log)
    save_into(model, run_dir, merge=merge)


def save_into(model, run_dir: Path, *, merge: bool) -> None:
    """Save the model into the run directory; ``c2s_config.json`` is moved in last."""
    staged = run_dir / f"{TMP_PREFIX}model"
    if staged.exists():
        shutil.rmtree(staged)
    model.save(staged, merge=merge)
    (staged / MARKER).unlink(missing_ok=True)  # the run directory keeps its own marker
    names = sorted(p.name for p in staged.iterdir())
    for name in [n for n in names if n != CONFIG_FILE] + [CONFIG_FILE]:
        os.replace(staged / name, run_dir / name)
    staged.rmdir()
