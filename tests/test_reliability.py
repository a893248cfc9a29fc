"""Never lose a user's data, never answer wrongly in silence: bad and unlucky inputs run
through ``c2s.cli.main`` as a user would, asserting the message, the exit status, and that
nothing was lost or left behind."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

import c2s
from c2s._atomic import LOCK_PREFIX, TMP_PREFIX
from c2s.cli import main

TRAIN = ["--preset", "tiny", "--max-steps", "1", "--n-genes", "8", "--batch-size", "8"]


def run(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return code, err


def digest(path: Path) -> str:
    """Names and bytes of everything under ``path`` (a file or a directory)."""
    h = hashlib.sha256()
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path.parent)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def leftovers(where: Path) -> list[str]:
    return [p.name for p in Path(where).iterdir() if p.name.startswith((TMP_PREFIX, LOCK_PREFIX))]


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def ds(pbmc_dataset, tmp_path):
    """A private copy of the PBMC dataset (tests may try to destroy it)."""
    out = tmp_path / "data" / "pbmc"
    shutil.copytree(pbmc_dataset.path, out)
    return out


# -- data loss ------------------------------------------------------------------------------------
def test_overwrite_never_replaces_a_directory_c2s_did_not_make(capsys, tmp_path, ds):
    mine = tmp_path / "results"
    mine.mkdir()
    (mine / "notes.txt").write_text("a week of work")
    before = digest(mine)
    for argv in (
        ["train", ds, "--out", mine, "--overwrite", *TRAIN],
        ["convert", ds / "cells-00000.parquet", mine, "--overwrite"],
        ["export", "--format", "reference", ds, mine, "--overwrite"],
    ):
        code, err = run(capsys, *argv)
        assert code == 2, err
        assert (
            "only replaces outputs it wrote" in one_error_line(err) or "not a training run" in err
        )
        assert digest(mine) == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "case",
    [
        "train_into_dataset",
        "train_inside_dataset",
        "evaluate_into_model",
        "reconstruct_into_dataset",
        "convert_onto_input",
    ],
)
def test_an_output_that_is_or_lies_inside_an_input_is_refused(
    capsys, tmp_path, ds, trained_model, pbmc, case
):
    model = tmp_path / "model"
    shutil.copytree(trained_model, model)
    h5ad = tmp_path / "cells.h5ad"
    pbmc[:50].copy().write_h5ad(h5ad)
    argv, victim = {
        "train_into_dataset": (["train", ds, "--out", ds, "--overwrite", *TRAIN], ds),
        "train_inside_dataset": (["train", ds, "--out", ds / "run", *TRAIN], ds),
        "evaluate_into_model": (["evaluate", model, ds, "--out", model, "--overwrite"], model),
        "reconstruct_into_dataset": (
            ["inverse", "reconstruct", ds, ds / "x.h5ad", "--overwrite"], ds,
        ),
        "convert_onto_input": (["convert", h5ad, h5ad, "--overwrite"], h5ad),
    }[case]  # fmt: skip
    before = digest(victim)
    code, err = run(capsys, *argv)
    assert code == 2 and "destroy the input" in one_error_line(err)
    assert digest(victim) == before
    assert leftovers(victim.parent) == []


def test_a_failed_or_interrupted_overwrite_keeps_the_previous_run(
    capsys, tmp_path, ds, monkeypatch
):
    out = tmp_path / "run"
    code, err = run(capsys, "train", ds, "--out", out, *TRAIN)
    assert code == 0, err
    before = digest(out)
    import transformers

    for exc, status in ((RuntimeError("disk full"), 1), (KeyboardInterrupt(), 130)):

        def fail(self, *a, exc=exc, **k):
            raise exc

        monkeypatch.setattr(transformers.Trainer, "train", fail)
        code, err = run(capsys, "train", ds, "--out", out, "--overwrite", *TRAIN)
        assert code == status, err
        assert digest(out) == before, "the previous run is untouched"
        assert leftovers(tmp_path) == []
    monkeypatch.undo()
    code, err = run(capsys, "train", ds, "--out", out, "--overwrite", *TRAIN, "--seed", "3")
    assert code == 0, err
    assert json.loads((out / "c2s_config.json").read_text())["training"]["options"]["seed"] == 3
    assert leftovers(tmp_path) == []


def test_one_writer_per_output(capsys, tmp_path, ds):
    out = tmp_path / "again"
    lock = tmp_path / f"{LOCK_PREFIX}again"
    # a live writer (this very process) holds the lock: a second one is refused
    lock.write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename, "since": 0}))
    code, err = run(capsys, "export", "--format", "reference", ds, out)
    assert code == 2 and "Another c2s process" in one_error_line(err) and str(lock) in err
    assert not out.exists()
    # a lock left by a process that no longer runs is reported and cleared
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    lock.write_text(json.dumps({"pid": dead, "host": os.uname().nodename, "since": 0}))
    code, err = run(capsys, "export", "--format", "reference", ds, out)
    assert code == 0 and "stale lock" in err
    assert out.is_dir() and not lock.exists()


def test_overwrite_replaces_what_c2s_made(capsys, tmp_path, ds, trained_model):
    """The other side of ownership: c2s's own outputs (marked, or from before the marker)
    are replaced on request."""
    out = tmp_path / "copy"
    assert run(capsys, "export", "--format", "reference", ds, out)[0] == 0
    assert run(capsys, "export", "--format", "reference", ds, out, "--overwrite")[0] == 0
    legacy = tmp_path / "legacy"
    shutil.copytree(ds, legacy)
    (legacy / ".c2s-output.json").unlink()  # a dataset written before the marker existed
    c2s.io.convert(c2s.datasets.pbmc68k_reduced()[:40].copy(), legacy, overwrite=True)
    assert c2s.io.read_dataset(legacy).n_cells == 40
    model = tmp_path / "model"
    shutil.copytree(trained_model, model)
    code, err = run(capsys, "train", ds, "--out", model, "--overwrite", *TRAIN)
    assert code == 0, err
    assert leftovers(tmp_path) == []
