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
    """The other side of ownership: c2s's own outputs (marked, or from before the marker
    and holding nothing but what c2s writes) are replaced on request."""
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
    (model / ".c2s-output.json").unlink()  # a training run from before the marker
    code, err = run(capsys, "train", ds, "--out", model, "--overwrite", *TRAIN)
    assert code == 0, err
    assert leftovers(tmp_path) == []


# -- every case: a message and a status, nothing lost -------------------------------------------
def _corrupt(ds: Path, how: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    shard = ds / "cells-00000.parquet"
    if how == "missing":
        shard.unlink()
    elif how == "truncated":
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    elif how == "garbage":
        shard.write_bytes(b"not parquet" * 50)
    elif how == "gene_out_of_range":
        t = pq.read_table(shard)
        genes = t.column("genes").to_pylist()
        genes[0] = [99_999, *genes[0][1:]]
        i = t.schema.get_field_index("genes")
        pq.write_table(t.set_column(i, "genes", pa.array(genes, pa.list_(pa.int32()))), shard)
    elif how == "short_vocab":
        v = ds / "vocab.parquet"
        pq.write_table(pq.read_table(v).slice(0, 100), v)
    elif how == "edited_count":
        meta = json.loads((ds / "c2s_dataset.json").read_text())
        meta["n_cells"] += 5
        (ds / "c2s_dataset.json").write_text(json.dumps(meta))
    elif how == "symlinked_shard":
        outside = ds.parent / "elsewhere.parquet"
        shard.rename(outside)
        shard.symlink_to(outside)
    elif how == "truncated_weights":  # ``ds`` is the model directory here
        w = ds / "model.safetensors"
        w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    elif how == "bad_model_type":
        cfg = json.loads((ds / "config.json").read_text())
        cfg["model_type"] = "nonsense"
        (ds / "config.json").write_text(json.dumps(cfg))
    elif how == "path_escape":
        meta = json.loads((ds / "c2s_dataset.json").read_text())
        meta["vocab_file"] = "../../outside.parquet"
        (ds / "c2s_dataset.json").write_text(json.dumps(meta))


def _h5ad(kind: str, src: Path, dest: Path) -> Path:
    import anndata as ad
    import numpy as np

    if kind == "truncated":
        dest.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    elif kind == "text":
        dest.write_text("hello")
    else:
        a = ad.read_h5ad(src)
        X = a.X.toarray()
        if kind == "float16":
            a.X = X.astype(np.float16)
        elif kind == "empty_obs_name":
            a.obs[""] = 1
        elif kind == "nan_gene_name":
            a.var["symbol"] = a.var_names.astype(str)
            a.var.iloc[0, a.var.columns.get_loc("symbol")] = np.nan
        elif kind == "empty_cell":
            X[3] = 0
            a.X = X
        a.write_h5ad(dest)
    return dest


# (name, argv with {ds} {model} {h5ad} {out} placeholders, corruption, exit status, stderr pattern)
CASES = [
    ("lr nan", "train {ds} --out {out} {train} --learning-rate nan", None, 2, "learning_rate must"),
    ("scheduler", "train {ds} --out {out} {train} --scheduler bogus", None, 2, "invalid choice"),
    ("warmup", "train {ds} --out {out} {train} --warmup -5", None, 2, "warmup must"),
    ("epochs", "train {ds} --out {out} {train} --epochs -1", None, 2, "epochs must"),
    ("resume finished", "train {ds} --out {model} {train} --resume latest", None, 2, "finished run"),
    ("missing shard", "export {ds} {out}", "missing", 2, "cannot be read"),
    ("truncated shard", "inverse eval {ds}", "truncated", 2, "cannot be read"),
    ("garbage shard", "predict {model} {ds} --out {out}.csv", "garbage", 2, "cannot be read"),
    ("gene index", "predict {model} {ds} --out {out}.csv", "gene_out_of_range", 2, "outside the vocabulary"),
    ("short vocab", "export {ds} {out}", "short_vocab", 2, "vocabulary has 100 genes"),
    ("check", "info {ds} --check", "gene_out_of_range", 2, "is damaged"),
    ("path escape", "info {ds}", "path_escape", 2, "reads nothing outside"),
    ("symlinked shard", "export {ds} {out}", "symlinked_shard", 2, "reads nothing outside"),
    ("edited count", "export {ds} {out}", "edited_count", 2, "shards hold 700 cells"),
    ("truncated weights", "predict {model} {h5ad} --out {out}.csv", "model:truncated_weights", 2, "damaged"),
    ("unknown model type", "embed {model} {h5ad} --out {out}.csv", "model:bad_model_type", 2, "nonsense"),
    ("resume a model", "train {ds} --out {out} {train} --resume {model}", None, 2, "Nothing to resume"),
    ("empty reference", "import-reference {empty_ref} {out}", None, 2, "empty or damaged"),
    ("bad vocabulary", "import-reference {bad_vocab_ref} {out}", None, 2, "Cannot read the vocabulary"),
    ("truncated h5ad", "predict {model} {h5ad:truncated} --out {out}.csv", None, 2, "Cannot read"),
    ("text h5ad", "embed {model} {h5ad:text} --out {out}.csv", None, 2, "Cannot read"),
    ("float16", "predict {model} {h5ad:float16} --out {out}.csv", None, 0, None),
    ("empty obs name", "convert {h5ad:empty_obs_name} {out}", None, 2, "empty name"),
    ("nan gene name", "convert {h5ad:nan_gene_name} {out} --var-names symbol", None, 2, "no name"),
    ("n-genes", "convert {h5ad} {out} --n-genes -3", None, 2, "n_genes must"),
    ("repeated obs", "convert {h5ad} {out} --obs cell_type cell_type", None, 0, None),
    ("split nan", "convert {h5ad} {out} --split-fractions nan,0.5,0.5", None, 2, "Split fractions"),
    ("n-genes 0", "predict {model} {h5ad} --out {out}.csv --n-genes 0", None, 2, "n_genes must"),
    ("temperature", "generate {model} --labels B --out {out}.h5ad --temperature -1", None, 2, "temperature"),
    ("top-p", "generate {model} --labels B --out {out}.h5ad --top-p 5", None, 2, "top_p"),
    ("unseen labels", "predict {model} {h5ad} --out {out}.csv --labels alien martian", None, 0, "never seen"),
    ("unseen labels strict", "predict {model} {h5ad} --out {out}.csv --labels alien --strict", None, 2, "never seen"),
    ("untrained task", "perturb {model} {h5ad} --out {out}.h5ad --perturbations IFNG --n-genes 4 --perturbation-key none", None, 0, "not trained for"),
    ("untrained strict", "describe {model} {h5ad} --out {out}.csv --strict", None, 2, "not trained for"),
    ("reconstruct csv", "inverse reconstruct {ds} {out}.csv", None, 2, "must be an .h5ad"),
    ("mistyped model", "predict ./modle {h5ad} --out {out}.csv", None, 2, "not a hub id"),
    ("empty cell", "embed {model} {h5ad:empty_cell} --out {out}.csv", None, 0, "express no gene"),
    ("label with slash", "predict {model} {h5ad} --out {out}.h5ad --labels CD4+/CD45RA+ B", None, 0, None),
    ("out under a file", "convert {h5ad} {model}/config.json/ds", None, 2, "is a file"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "argv", "damage", "status", "says"), CASES, ids=[c[0] for c in CASES]
)
def test_each_case_has_a_message_and_loses_nothing(
    capsys, tmp_path, ds, trained_model, pbmc, name, argv, damage, status, says
):
    import warnings

    model = tmp_path / "model"
    shutil.copytree(trained_model, model)
    h5ad = tmp_path / "cells.h5ad"
    pbmc[:30].copy().write_h5ad(h5ad)
    if damage:
        target, _, how = damage.rpartition(":")
        _corrupt(model if target == "model" else ds, how)
    refs = {}
    if "_ref}" in argv:
        import datasets

        refs["empty_ref"] = tmp_path / "empty_ref"
        datasets.Dataset.from_dict({"cell_name": [], "cell_sentence": []}).save_to_disk(
            str(refs["empty_ref"])
        )
        refs["bad_vocab_ref"] = tmp_path / "bad_vocab_ref"
        assert run(capsys, "export", ds, refs["bad_vocab_ref"])[0] == 0
        (refs["bad_vocab_ref"] / "vocabulary.json").write_text("{not json")
    words = []
    for w in argv.split():
        if w.startswith("{h5ad:"):
            w = str(_h5ad(w[6:-1], h5ad, tmp_path / f"{w[6:-1]}.h5ad"))
        words += (
            w.format(
                ds=ds, model=model, h5ad=h5ad, out=tmp_path / "out", train=" ".join(TRAIN), **refs
            )
        ).split()
    inputs = {p: digest(p) for p in (ds, model, h5ad)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, err = run(capsys, *words)
    assert code == status, err
    if status == 2:
        line = one_error_line(err)
        assert says in line, line
    else:
        assert "Traceback" not in err and "error:" not in err
        if says:
            assert says in err, err
    assert not [w for w in caught if "slashes" in str(w.message)]
    assert {p: digest(p) for p in inputs} == inputs, "an input changed"
    assert leftovers(tmp_path) == [] and leftovers(ds.parent) == []
    if status == 2 and "{out}" in argv:
        assert not list(tmp_path.glob("out*")), "a failed command left output"


def test_a_closed_pipe_is_not_an_error(ds):
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "c2s.cli", "info", str(ds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before c2s writes (``c2s info ds | head -0``)
    err = proc.stderr.read().decode()
    assert proc.wait() == 0 and "Traceback" not in err and "error" not in err


def test_a_from_scratch_model_trains_into_a_relative_path(monkeypatch, tmp_path, ds):
    """A new model's name is empty; that is no input path (it once made every output "lie
    inside the input")."""
    from c2s.model import C2SModel
    from c2s.train import fine_tune

    monkeypatch.chdir(tmp_path)
    m = C2SModel.from_scratch(ds, device="cpu", max_length=128)
    fine_tune(m, ds, out="run", max_steps=1, n_genes=8, eval_split=None)
    assert (tmp_path / "run" / "c2s_config.json").exists()


# -- the option space -----------------------------------------------------------------------------
hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies
NUMBER = st.one_of(
    st.integers(-3, 40),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from(["x", "", "1e9", "-0"]),
)


@pytest.fixture(scope="module")
def small_h5ad(tmp_path_factory, _pbmc):
    path = tmp_path_factory.mktemp("h5") / "cells.h5ad"
    _pbmc[:40].copy().write_h5ad(path)
    return path


@hypothesis.settings(max_examples=40, deadline=None, derandomize=True)
@hypothesis.given(
    n_genes=st.none() | NUMBER,
    split=st.none() | st.lists(NUMBER, min_size=0, max_size=4).map(lambda v: ",".join(map(str, v))),
    seed=st.none() | st.integers(-2, 5),
    chunk=st.none() | st.integers(-1, 50),
    shard=st.none() | st.integers(-1, 50),
    stratify=st.none() | st.sampled_from(["cell_type", "nope", ""]),
    obs=st.none() | st.lists(st.sampled_from(["cell_type", "louvain", "nope", ""]), min_size=1, max_size=2),
    flags=st.lists(st.sampled_from(["--normalize", "--no-values", "--raw"]), unique=True),
)  # fmt: skip
def test_convert_options_exit_cleanly(
    tmp_path_factory, small_h5ad, n_genes, split, seed, chunk, shard, stratify, obs, flags
):
    out = tmp_path_factory.mktemp("conv") / "ds"
    argv = ["convert", small_h5ad, out, *flags]
    for flag, value in (
        ("--n-genes", n_genes), ("--split-fractions", split), ("--seed", seed),
        ("--chunk-size", chunk),
        ("--shard-size", shard), ("--stratify", stratify),
    ):  # fmt: skip
        if value is not None:
            argv += [flag, str(value)]
    if obs:
        argv += ["--obs", *obs]
    before = digest(small_h5ad)
    _exits_cleanly(argv, out)
    assert digest(small_h5ad) == before


@hypothesis.settings(max_examples=25, deadline=None, derandomize=True)
@hypothesis.given(
    temperature=st.none() | NUMBER,
    top_k=st.none() | NUMBER,
    top_p=st.none() | NUMBER,
    n_genes=st.none() | st.integers(-2, 12),
    per_label=st.none() | st.integers(-1, 2),
    batch=st.none() | st.integers(-1, 3),
    labels=st.lists(st.sampled_from(["CD19+ B", "alien", "", "a/b"]), min_size=1, max_size=2),
)  # fmt: skip
def test_generate_options_exit_cleanly(
    tmp_path_factory, trained_model, temperature, top_k, top_p, n_genes, per_label, batch, labels
):
    out = tmp_path_factory.mktemp("gen") / "cells.h5ad"
    argv = ["generate", trained_model, "--out", out, "--labels", *labels]
    for flag, value in (
        ("--temperature", temperature), ("--top-k", top_k), ("--top-p", top_p),
        ("--n-genes", n_genes), ("--n-per-label", per_label), ("--batch-size", batch),
    ):  # fmt: skip
        if value is not None:
            argv += [flag, str(value)]
    before = digest(trained_model)
    _exits_cleanly(argv, out)
    assert digest(trained_model) == before


def _exits_cleanly(argv, out: Path) -> None:
    """Exit 0 with the output, or exit 2 with one line and nothing written; never a
    traceback (argparse's own usage errors exit 2 through SystemExit)."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
    text = err.getvalue()
    assert "Traceback" not in text, text
    assert code in (0, 2), (argv, text)
    if code == 0:
        assert out.exists()
    else:
        lines = [ln for ln in text.splitlines() if not ln.startswith("warning:")]
        assert lines and lines[-1].startswith(("error: ", "c2s ")), text
        assert not out.exists()
    assert leftovers(out.parent) == []


def test_outputs_from_before_the_marker_are_recognized(tmp_path, trained_model):
    """Each shape an older c2s wrote (no marker) is c2s's while it holds only what c2s
    writes there; one entry of the user's (a copied signature file beside their own files)
    makes it theirs, which --overwrite refuses to replace."""
    from c2s._atomic import MARKER, TMP_PREFIX, foreign_entry, output_kind

    def make(name, *files):
        d = tmp_path / name
        for f in files:
            (d / f).parent.mkdir(parents=True, exist_ok=True)
            (d / f).write_text("{}") if "." in Path(f).name else (d / f).mkdir()
        return d

    model = tmp_path / "model"
    shutil.copytree(trained_model, model)
    (model / MARKER).unlink()
    shapes = {
        "dataset": make("ds", "c2s_dataset.json", "vocab.parquet", "cells-00000.parquet"),
        "model": model,
        "run": make("r", "split.json", "checkpoints", "train_log.json"),
        "evaluation": make("e", "metrics.json", "report.md", "confusion_matrix.png",
                           "predictions.csv", "generated.h5ad"),
        "quickstart": make("q", "metrics.json", "report.md", "dataset/c2s_dataset.json",
                           "model/config.json", "loss_curve_generator.png", "inverse_fit.png"),
    }  # fmt: skip
    for kind, d in shapes.items():
        (d / f"{TMP_PREFIX}c2s_dataset.json").write_text("")  # c2s's own temporaries are fine
        assert (output_kind(d), foreign_entry(d)) == (kind, None)
        (d / "notes.txt").write_text("mine")
        assert (output_kind(d), foreign_entry(d)) == (None, "notes.txt")
    assert output_kind(make("mine", "report.md", "notes.txt")) is None
    marked = make("marked", "anything.txt")
    (marked / MARKER).write_text(json.dumps({"kind": "dataset"}))
    assert (output_kind(marked), foreign_entry(marked)) == ("dataset", None)


def test_ctrl_c_during_a_parallel_conversion(tmp_path):
    """Ctrl-C reaches every process of the group: the workers stay quiet, the main process
    says one line, exits 130 and leaves nothing behind."""
    import signal
    import subprocess
    import sys
    import time

    big = tmp_path / "big.h5ad"
    c2s.datasets.write_synthetic_h5ad(big, 40_000, 4000, genes_per_cell=1200, normalize=True)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "c2s.cli", "convert", big, out, "--workers", "2"]
    cmd += ["--shard-size", "1000", "--chunk-size", "256"]
    proc = subprocess.Popen(
        [str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, env={**os.environ, "C2S_NO_PROGRESS": "1"},
    )  # fmt: skip
    deadline = time.time() + 120
    while not list(tmp_path.glob(f"{TMP_PREFIX}out-*/cells-*.parquet")):  # workers are busy
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read().decode()
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    err = err.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines() == [
        "interrupted: no partial output was left; run the same command again."
    ]
    assert not out.exists() and leftovers(tmp_path) == []
