"""Stopped, killed, out of disk, out of workers, or pointed at a user's folder: c2s loses
nothing, leaves nothing behind, says one line. SIGTERM stops a command as Ctrl-C does (exit
143), workers die with their parent, and what a killed run left is cleared by the next one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_reliability import TRAIN, digest, leftovers, one_error_line, run

import c2s
from c2s._atomic import LOCK_PREFIX, TMP_PREFIX
from c2s.sources import MatrixSource

ENV = {**os.environ, "C2S_NO_PROGRESS": "1"}
QUICK = [*TRAIN, "--eval-split", "", "--max-train-examples", "32", "--no-probe", "--no-calibrate"]
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.fixture
def ds(pbmc_dataset, tmp_path):
    out = tmp_path / "data" / "pbmc"
    shutil.copytree(pbmc_dataset.path, out)
    return out


def _c2s(*argv, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "c2s.cli", *map(str, argv)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=ENV, start_new_session=True, **kw,
    )  # fmt: skip


def _wait_for(proc: subprocess.Popen, pattern: str, where: Path, limit: float = 180) -> None:
    deadline = time.time() + limit
    while not list(where.glob(pattern)):
        assert proc.poll() is None, proc.communicate()[1].decode()
        assert time.time() < deadline, f"no {pattern} after {limit} s"
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and _stat(d.name)[1] == str(pid):
                kids.append(int(d.name))
        except OSError:
            continue
    return kids


def _stat(pid) -> list[str]:
    """State and parent of a process, from /proc/PID/stat."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:2]


def _running(pid: int) -> bool:
    try:
        return _stat(pid)[0] != "Z"  # a zombie has exited (its parent has not reaped it)
    except OSError:
        return False


def _gone(pids, within: float) -> list[int]:
    """Those of ``pids`` still running after ``within`` seconds."""
    deadline = time.time() + within
    while any(_running(p) for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    return [p for p in pids if _running(p)]


# -- ownership: a copied signature file does not make a user's folder c2s's --------------------
@pytest.mark.parametrize("verb", ["convert", "evaluate", "train"])
def test_overwrite_refuses_a_users_folder_holding_a_copied_c2s_file(
    capsys, tmp_path, ds, trained_model, pbmc, verb
):
    mine = tmp_path / "results"
    mine.mkdir()
    (mine / "notes.txt").write_text("a week of work")
    h5ad = tmp_path / "cells.h5ad"
    pbmc[:30].copy().write_h5ad(h5ad)
    copied, argv = {
        "convert": ([ds / "c2s_dataset.json"], ["convert", h5ad, mine]),
        "evaluate": ([], ["evaluate", trained_model, ds, "--out", mine]),
        "train": ([trained_model / "c2s_config.json", trained_model / "config.json"],
                  ["train", ds, "--out", mine, *TRAIN]),
    }[verb]  # fmt: skip
    for f in copied:
        shutil.copy(f, mine)
    if verb == "evaluate":  # a report of c2s's, kept with the user's notes
        (mine / "metrics.json").write_text("{}")
        (mine / "report.md").write_text("# c2s evaluation\n")
    before = digest(mine)
    code, err = run(capsys, *argv, "--overwrite")
    assert code == 2, err
    line = one_error_line(err)
    assert "only replaces outputs it wrote" in line and "'notes.txt'" in line, line
    assert digest(mine) == before
    assert leftovers(tmp_path) == []


# -- SIGTERM and SIGKILL ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_h5ad(tmp_path_factory):
    """Cells enough that two workers are busy for a few seconds (shards of 500)."""
    path = tmp_path_factory.mktemp("big") / "big.h5ad"
    c2s.datasets.write_synthetic_h5ad(path, 12_000, 4000, genes_per_cell=1200, normalize=True)
    return path


def _busy_conversion(big_h5ad, out: Path) -> tuple[subprocess.Popen, list[int]]:
    """A ``convert --workers 2`` whose workers are writing shards; its child processes."""
    proc = _c2s("convert", big_h5ad, out, "--workers", "2", "--shard-size", "500",
                "--chunk-size", "256")  # fmt: skip
    _wait_for(proc, f"{TMP_PREFIX}{out.name}-*/cells-*.parquet", out.parent)
    kids = _children(proc.pid)
    assert len(kids) >= 2, kids
    return proc, kids


@linux
def test_sigterm_stops_a_parallel_conversion_like_ctrl_c(tmp_path, big_h5ad):
    out = tmp_path / "out"
    proc, workers = _busy_conversion(big_h5ad, out)
    os.kill(proc.pid, signal.SIGTERM)  # the parent alone, as `kill PID` does
    proc.wait(timeout=120)
    orphans = _gone(workers, within=5)
    for pid in orphans:
        os.kill(pid, signal.SIGKILL)
    assert orphans == [], "workers outlived their parent"
    err = proc.communicate(timeout=60)[1].decode()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines() == [
        "interrupted: no partial output was left; run the same command again."
    ]
    assert not out.exists() and leftovers(tmp_path) == []


@linux
def test_workers_die_with_a_killed_parent_and_the_next_run_clears_what_it_left(
    capsys, tmp_path, big_h5ad, pbmc
):
    out = tmp_path / "out"
    proc, workers = _busy_conversion(big_h5ad, out)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    orphans = _gone(workers, within=5)
    for pid in orphans:
        os.kill(pid, signal.SIGKILL)
    assert orphans == [], "workers outlived their parent"
    proc.communicate(timeout=60)  # the workers held its pipes too
    left = sorted(leftovers(tmp_path))
    assert left == [f"{LOCK_PREFIX}out", f"{TMP_PREFIX}out-{proc.pid}-{left[1][-8:]}"], left
    h5ad = tmp_path / "cells.h5ad"
    pbmc[:30].copy().write_h5ad(h5ad)
    code, err = run(capsys, "convert", h5ad, out)
    assert code == 0, err
    assert f"stale lock on {str(out)!r} left by process {proc.pid}" in err
    assert f"Removed {left[1]!r}, an unfinished temporary of {str(out)!r}" in err
    assert leftovers(tmp_path) == [] and c2s.io.read_dataset(out).n_cells == 30


def test_a_previous_output_moved_aside_by_a_killed_replacement_is_put_back(capsys, tmp_path, ds):
    """Killed between its two renames, a replacement leaves the previous output under a
    temporary name: the next writer puts it back instead of removing it."""
    from c2s._atomic import _ASIDE, tmp_sibling

    out = tmp_path / "ref"
    assert run(capsys, "export", "--format", "reference", ds, out)[0] == 0
    before = digest(out)
    pid = os.fork()
    if pid == 0:  # a writer that moved the output aside and died
        os.replace(out, tmp_sibling(out, suffix=_ASIDE))
        os._exit(0)
    os.waitpid(pid, 0)
    assert not out.exists()
    code, err = run(capsys, "export", "--format", "reference", ds, out)
    assert code == 2 and "already exists" in one_error_line(err)
    assert f"Put back {str(out)!r}: process {pid}" in err
    assert digest(out) == before and leftovers(tmp_path) == []


def test_sigterm_during_train_overwrite_keeps_the_previous_run(capsys, tmp_path, ds):
    out = tmp_path / "run"
    assert run(capsys, "train", ds, "--out", out, *QUICK)[0] == 0
    before, entries = digest(out), sorted(os.listdir(tmp_path))
    hidden = f"{TMP_PREFIX}run-new-run"
    proc = _c2s("train", ds, "--out", out, "--overwrite", *QUICK, "--max-steps", "100000",
                "--save-steps", "1")  # fmt: skip
    _wait_for(proc, f"{hidden}/checkpoints/checkpoint-*", tmp_path)  # checkpoints of the new run
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    err = err.decode()
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "--resume" not in err
    assert err.strip().splitlines()[-1] == (
        f"interrupted: the new run was discarded; {out} holds the previous run, unchanged."
    )
    assert digest(out) == before
    assert sorted(os.listdir(tmp_path)) == entries, "the lock, the new run or its spill is left"


def test_ctrl_c_before_the_first_checkpoint_leaves_nothing(capsys, tmp_path, ds, monkeypatch):
    import transformers

    def stop(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(transformers.Trainer, "train", stop)
    code, err = run(capsys, "train", ds, "--out", tmp_path / "run", *QUICK)
    assert code == 130, err
    assert err.strip().splitlines()[-1] == (
        "interrupted: no partial output was left; run the same command again."
    )
    assert os.listdir(tmp_path) == ["data"]


def test_the_next_run_clears_a_killed_training_runs_leftovers(tmp_path):
    """A run killed with SIGKILL leaves its lock and its hidden replacement; the next run
    says so and removes them. A new run that fails before its first checkpoint leaves
    nothing."""
    import warnings

    from c2s.train._rundir import make_run_dir, run_dir

    out = tmp_path / "run"
    make_run_dir(out)
    (out / "model.safetensors").write_text("the previous run")
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    (tmp_path / f"{LOCK_PREFIX}run").write_text(
        json.dumps({"pid": dead, "host": os.uname().nodename, "since": 0})
    )
    (tmp_path / f"{TMP_PREFIX}run-new-run" / "checkpoints").mkdir(parents=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with run_dir(out, overwrite=True, resume=None) as work:
            assert work.name == f"{TMP_PREFIX}run-new-run" and not work.exists()
            make_run_dir(work)
    said = " ".join(str(w.message) for w in caught)
    assert "stale lock" in said and "an unfinished replacement of" in said, said
    assert sorted(os.listdir(tmp_path)) == ["run"] and not (out / "model.safetensors").exists()
    fresh = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt), run_dir(fresh, overwrite=False, resume=None) as work:
        make_run_dir(work)
        (work / "split.json").write_text("{}")
        raise KeyboardInterrupt
    assert sorted(os.listdir(tmp_path)) == ["run"]


# -- a full disk --------------------------------------------------------------------------------
def _limited(size: int):
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def _write(adata, path: Path) -> Path:
    adata.write_h5ad(path)
    return path


@pytest.mark.parametrize(
    ("verb", "limit"),
    [("convert", 100_000), ("train", 1_000_000), ("export", 100_000), ("predict", 50_000)],
)
def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, ds, trained_model, pbmc, verb, limit):
    """No file may grow past ``limit`` bytes (as on a full disk): exit 2, one line, no
    traceback, no crash, no output, no temporaries, the inputs as they were."""
    h5ad = tmp_path / "cells.h5ad"
    pbmc[:30].copy().write_h5ad(h5ad)
    out = tmp_path / "out"
    argv = {
        "convert": ["convert", _write(pbmc, tmp_path / "pbmc.h5ad"), out],  # shards > 100 kB
        "train": ["train", ds, "--out", out, *QUICK, "--save-steps", "1"],  # the weights > 1 MB
        "export": ["export", "--format", "reference", ds, out],
        "predict": ["predict", trained_model, h5ad, "--out", out.with_suffix(".h5ad")],
    }[verb]
    inputs = {p: digest(p) for p in (ds, h5ad, trained_model)}
    entries = sorted(os.listdir(tmp_path))
    proc = _c2s(*argv, preexec_fn=_limited(limit))
    _, err = proc.communicate(timeout=300)
    err = err.decode()
    assert proc.returncode == 2, err
    line = one_error_line(err)
    assert line.startswith("error: the disk is full or a file size limit was reached"), line
    assert "Exception ignored" not in err
    assert sorted(os.listdir(tmp_path)) == entries, "output or temporaries left"
    assert {p: digest(p) for p in inputs} == inputs


# -- a Dask cluster that loses its only worker --------------------------------------------------
def test_a_cluster_left_without_workers_ends_the_conversion(tmp_path, _pbmc, monkeypatch):
    distributed = pytest.importorskip("distributed")
    import cloudpickle
    import dask

    import c2s.sources as matrix

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import tests
    h5ad = tmp_path / "pbmc.h5ad"
    _pbmc.write_h5ad(h5ad)
    real = matrix.open_source

    def open_dying(*args, **kwargs):
        src = real(*args, **kwargs)
        return _DyingSource(
            **{k: getattr(src, k) for k in ("where", "shape", "var", "obs", "path")}
        )

    monkeypatch.setattr(matrix, "open_source", open_dying)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        next(iter(cluster.workers.values())).close_gracefully()  # its nanny starts no other
        t0 = time.monotonic()
        with (
            dask.config.set({"c2s.no-workers-timeout": "2s"}),
            pytest.raises(c2s.C2SError, match="has had no workers for 2 s"),
        ):
            c2s.io.convert(h5ad, tmp_path / "out", client=client)
        assert time.monotonic() - t0 < 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pbmc.h5ad"]


class _DyingSource(MatrixSource):
    def iter_rows(self, start, stop, chunk_size):
        os._exit(1)  # the worker process dies on its first rows, without a word
        yield
