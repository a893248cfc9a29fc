"""Input errors exit 2 with one line, never 1 ("a bug") with a traceback: pickled or
misshapen weights, damaged configs and checkpoints, devices that are not here, a hub that
cannot be reached. Each runs through ``c2s.cli.main`` and leaves its inputs as they were
and nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from c2s._atomic import LOCK_PREFIX, TMP_PREFIX
from c2s.cli import main

torch = pytest.importorskip("torch")

TRAIN = ["--max-steps", "4", "--save-steps", "2", "--n-genes", "8", "--batch-size", "8",
         "--eval-split", "", "--max-train-examples", "32", "--no-probe", "--no-calibrate"]  # fmt: skip
ALIGN = ["--max-steps", "4", "--save-steps", "2", "--n-genes", "8", "--max-prompts", "8"]


PREFIXES = (TMP_PREFIX, LOCK_PREFIX)


class Evil:
    """An object a weights-only load does not allow (any pickled class is one)."""


def run(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def digest(path: Path) -> dict:
    path = Path(path)
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "unexpected" not in err
    return lines[0]


def refused(capsys, argv, message, *, unchanged=(), absent=()) -> str:
    """Exit 2, one line holding ``message``; ``unchanged`` as they were, ``absent`` absent."""
    before = [digest(p) for p in unchanged]
    code, err = run(capsys, *argv)
    assert code == 2, err
    line = one_error_line(err)
    assert message in line, line
    assert [digest(p) for p in unchanged] == before
    for p in absent:
        assert not Path(p).exists()
        left = [q.name for q in Path(p).parent.iterdir() if q.name.startswith(PREFIXES)]
        assert left == []
    return line


@pytest.fixture
def model(trained_model, tmp_path) -> Path:
    """A private copy of the trained model (tests damage it)."""
    out = tmp_path / "model"
    shutil.copytree(trained_model, out)
    return out


@pytest.fixture(scope="module")
def interrupted(trained_model, pbmc_dataset, tmp_path_factory) -> Path:
    """A training run of the trained model stopped at its checkpoint of step 2."""
    from transformers import TrainerCallback

    from c2s.model import C2SModel
    from c2s.train import fine_tune

    class Interrupt(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            if state.global_step == 2:
                raise KeyboardInterrupt

    out = tmp_path_factory.mktemp("interrupted") / "run"
    m = C2SModel.from_pretrained(trained_model, device="cpu")
    with pytest.raises(KeyboardInterrupt):
        fine_tune(m, pbmc_dataset, out=out, callbacks=[Interrupt()], max_steps=4,
                  save_steps=2, n_genes=8, batch_size=8, eval_split=None,
                  max_train_examples=32, probe=False, calibrate=False)  # fmt: skip
    assert (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file()
    return out


@pytest.fixture
def run_dir(interrupted, tmp_path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(interrupted, out)
    return out


def _commands(model, ds, out):
    cmds = {
        "predict": ["predict", model, ds, "--out", out / "p.csv"],
        "train": ["train", ds, "--model", model, "--out", out / "t", *TRAIN],
        "align": ["align", model, ds, "--out", out / "a", *ALIGN],
        "serve": ["serve", model, "--port", "0"],
    }
    return cmds


# -- weights -------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["predict", "train", "align", "serve"])
def test_pickled_weights_are_refused_safely(capsys, tmp_path, model, pbmc_dataset, command):
    if command == "align":
        pytest.importorskip("trl")
    if command == "serve":
        pytest.importorskip("fastapi")
        pytest.importorskip("uvicorn")
    (model / "model.safetensors").unlink()
    torch.save({"gpt_neox.embed_in.weight": Evil()}, model / "pytorch_model.bin")
    out = tmp_path / "out"
    out.mkdir()
    line = refused(
        capsys, _commands(model, pbmc_dataset.path, out)[command],
        "are a pickle holding more than tensors (it would build", unchanged=[model, out],
    )  # fmt: skip
    assert "Evil" in line and "c2s loads only safetensors or weights-only pickles" in line
    assert list(out.iterdir()) == []


def test_weights_of_another_shape_say_which_without_the_table(capfd, tmp_path, model, pbmc_dataset):
    cfg = json.loads((model / "config.json").read_text())
    cfg["intermediate_size"] //= 2
    (model / "config.json").write_text(json.dumps(cfg))
    out = tmp_path / "p.csv"
    before = digest(model)
    code = main([str(a) for a in ["predict", model, pbmc_dataset.path, "--out", out]])
    err = capfd.readouterr().err  # transformers logs to the real stderr
    assert code == 2, err
    line = one_error_line(err)
    assert "do not fit this model's config (config.json): e.g. gpt_neox.layers." in line
    assert " in the weights but " in line
    assert "LOAD REPORT" not in err and "MISMATCH" not in err
    assert digest(model) == before and not out.exists()


def test_a_c2s_config_that_is_not_an_object(capsys, tmp_path, model, pbmc_dataset):
    (model / "c2s_config.json").write_text("[1, 2]\n")
    out = tmp_path / "p.csv"
    line = refused(
        capsys, ["predict", model, pbmc_dataset.path, "--out", out], "holds a JSON list",
        unchanged=[model], absent=[out],
    )  # fmt: skip
    assert "c2s_config.json" in line


# -- devices -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("bogus", "Unknown device 'bogus'; use auto, cpu"),
        ("cuda:x", "Unknown device 'cuda:x'"),
        ("mps", "Apple MPS is not available here"),
        ("cuda", "CUDA is not available here"),
    ],
)
def test_a_device_that_is_not_here(capsys, tmp_path, trained_model, pbmc_dataset, device, message):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    out = tmp_path / "p.csv"
    refused(
        capsys, ["predict", trained_model, pbmc_dataset.path, "--out", out, "--device", device],
        message, unchanged=[trained_model], absent=[out],
    )  # fmt: skip
    train = ["train", pbmc_dataset.path, "--out", tmp_path / "t", "--preset", "tiny", *TRAIN]
    refused(capsys, [*train, "--device", device], message, absent=[tmp_path / "t"])


# -- resuming ------------------------------------------------------------------------------------
def _resume(kind, trained_model, ds, out):
    if kind == "train":
        return ["train", ds, "--model", trained_model, "--out", out, *TRAIN, "--resume", "latest"]
    return ["align", trained_model, ds, "--out", out, *ALIGN, "--resume", "latest"]


@pytest.mark.parametrize("kind", ["train", "align"])
@pytest.mark.parametrize(
    "name", ["rng_state.pth", "optimizer.pt", "scheduler.pt", "pytorch_model.bin"]
)
def test_resume_refuses_a_pickled_checkpoint_file(
    capsys, trained_model, pbmc_dataset, run_dir, kind, name
):
    if kind == "align":
        pytest.importorskip("trl")
    ckpt = run_dir / "checkpoints" / "checkpoint-2"
    if name == "pytorch_model.bin":  # the weights as a pickle instead of safetensors
        (ckpt / "model.safetensors").unlink()
    else:
        assert (ckpt / name).is_file()
    torch.save({"state": Evil()}, ckpt / name)
    line = refused(
        capsys, _resume(kind, trained_model, pbmc_dataset.path, run_dir),
        f"{ckpt / name} is a pickle holding more than tensors", unchanged=[run_dir, trained_model],
    )  # fmt: skip
    assert "Resume from another checkpoint-N of the run" in line


@pytest.mark.parametrize("kind", ["train", "align"])
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda text: text[: len(text) // 2], "trainer_state.json is damaged (Expecting"),
        (lambda text: "[]", "trainer_state.json holds a JSON list, not an object"),
        (lambda text: json.dumps({**json.loads(text), "global_step": "two"}),
         "global_step 'two' is not a step number"),
        (lambda text: json.dumps({**json.loads(text), "log_history": {"loss": 1}}),
         "log_history is not a list of records"),
        (lambda text: json.dumps({**json.loads(text), "stepz": 2}), "unknown keys ['stepz']"),
    ],
)  # fmt: skip
def test_resume_refuses_a_damaged_trainer_state(
    capsys, trained_model, pbmc_dataset, run_dir, kind, damage, message
):
    if kind == "align":
        pytest.importorskip("trl")
    state = run_dir / "checkpoints" / "checkpoint-2" / "trainer_state.json"
    state.write_text(damage(state.read_text()))
    refused(
        capsys, _resume(kind, trained_model, pbmc_dataset.path, run_dir), message,
        unchanged=[run_dir, trained_model],
    )  # fmt: skip


# -- the hub -------------------------------------------------------------------------------------
def _offline_env(tmp_path) -> dict:
    env = {
        k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    # connection refused at once: no network, as on a cluster node
    return {**env, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf"),
            "C2S_NO_PROGRESS": "1"}  # fmt: skip


def test_a_hub_id_without_a_network_says_so_once_and_quickly(tmp_path, pbmc_dataset):
    out = tmp_path / "p.csv"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "c2s.cli", "predict", "someone/no-such-model",
         str(pbmc_dataset.path), "--out", str(out)],
        env=_offline_env(tmp_path), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stderr)
    assert "Cannot reach the Hugging Face Hub to download 'someone/no-such-model'" in line
    assert "download it on a machine with a network (or set HF_HOME" in line
    assert "Retrying" not in proc.stderr
    assert seconds < 30, seconds  # the clients' own retries took over a minute
    assert not out.exists()


def test_a_cached_hub_model_loads_without_a_network(tmp_path, trained_model):
    # the Hugging Face cache layout: models--OWNER--NAME/{refs/main, snapshots/COMMIT/...}
    repo = tmp_path / "hf" / "hub" / "models--someone--tiny"
    shutil.copytree(trained_model, repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    code = (
        "from c2s.model import C2SModel\n"
        "m = C2SModel.from_pretrained('someone/tiny', device='cpu')\n"
        "print(len(m.config.genes))\n"
    )
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=_offline_env(tmp_path),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    genes = json.loads((trained_model / "c2s_config.json").read_text())["genes"]
    assert proc.stdout.split() == [str(len(genes))]
    assert "Retrying" not in proc.stderr and time.perf_counter() - t0 < 30
