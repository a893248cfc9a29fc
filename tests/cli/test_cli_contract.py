"""The CLI's contract: every flag of a model verb reaches the ``c2s.tl`` verb, its defaults are
the verb's, and every failure is one line on stderr with a documented exit status."""

from __future__ import annotations

import argparse
import functools
import inspect

import pytest

import c2s
from c2s.cli import build_parser, main

VERBS = ("predict", "embed", "generate", "perturb", "describe")
# Flags that belong to the command line, not to the verb.
CLI_ONLY = {"model", "input", "out", "device", "overwrite", "json", "debug", "help", "verbose",
            "measurement", "x_name", "obs_filter", "var_filter"}  # fmt: skip
RENAMED = {"raw": "use_raw"}


def subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise AssertionError(name)


@pytest.mark.parametrize("name", VERBS)
def test_every_flag_is_a_parameter_of_the_verb_with_its_default(name):
    verb = inspect.signature(getattr(c2s.tl, name)).parameters
    for action in subparser(name)._actions:
        dest = action.dest
        if dest in CLI_ONLY:
            continue
        param = RENAMED.get(dest, dest)
        assert param in verb, f"--{dest.replace('_', '-')} does not reach c2s.tl.{name}"
        if (
            action.required
            or not action.option_strings
            or verb[param].default is inspect.Parameter.empty
        ):
            continue  # required on one side: no default to agree on
        assert action.default == verb[param].default, (
            f"c2s {name} --{dest.replace('_', '-')} defaults to {action.default!r}, "
            f"c2s.tl.{name}({param}=...) to {verb[param].default!r}"
        )


class _Stop(Exception):
    pass


@pytest.fixture
def recorded(monkeypatch):
    """Replace model loading and the tl verbs: each call records its arguments and stops."""
    from c2s.model import C2SModel

    calls = {}
    monkeypatch.setattr(C2SModel, "from_pretrained", classmethod(lambda cls, *a, **k: "MODEL"))

    def fake(name):
        @functools.wraps(getattr(c2s.tl, name))  # the real signature: flags are built from it
        def verb(*args, **kwargs):
            calls[name] = (args, kwargs)
            raise _Stop

        return verb

    for name in VERBS:
        monkeypatch.setattr(c2s.tl, name, fake(name))
    return calls


def test_flags_reach_the_verbs(recorded, capsys, tmp_path, pbmc):
    h5 = tmp_path / "cells.h5ad"
    pbmc[:4].copy().write_h5ad(h5)
    cells = ["--layer", "L", "--raw", "--var-names", "sym", "--n-genes", "7", "--organism", "Mus"]
    runs = {
        "predict": [
            h5, *cells, "--task", "tissue_prediction", "--mode", "free", "--labels", "a", "b",
            "--key-added", "k", "--group-by", "donor", "--max-new-tokens", "9",
            "--batch-size", "3", "--calibration", "content_free", "--length-norm", "--top-labels", "3",
        ],
        "embed": [
            h5, *cells, "--task", "cell_type_generation", "--pool", "last",
            "--hidden-layer", "1", "--key-added", "k", "--batch-size", "3",
        ],
        "generate": [
            "--task", "tissue_conditional_generation", "--labels", "lung", "--n-per-label", "2",
            "--n-cells", "3", "--n-genes", "7", "--organism", "Mus", "--temperature", "0.5",
            "--top-k", "4", "--top-p", "0.9", "--seed", "5", "--batch-size", "3",
        ],
        "perturb": [
            h5, *cells, "--perturbations", "IFNG", "--temperature", "0.5", "--top-k", "4",
            "--top-p", "0.9", "--seed", "5", "--batch-size", "3",
        ],
        "describe": [
            h5, *cells, "--group-by", "donor", "--max-cells", "4", "--max-new-tokens", "9",
            "--temperature", "0.5", "--top-p", "0.9", "--seed", "5", "--batch-size", "3",
            "--backend", "vllm",
        ],
    }  # fmt: skip
    for name, argv in runs.items():
        code = main([name, "M", *map(str, argv), "--out", str(tmp_path / f"{name}.csv")])
        assert code == 1  # the fake verb's exception is unexpected
        args, kw = recorded[name]
        for action in subparser(name)._actions:
            if action.dest in CLI_ONLY or not action.option_strings:
                continue
            param = RENAMED.get(action.dest, action.dest)
            if action.dest in ("perturbations", "labels") and name in ("perturb", "generate"):
                continue  # passed positionally
            assert param in kw, f"c2s {name}: --{action.dest} was not passed"
            if action.option_strings[0] in argv:  # given a value other than the default
                assert kw[param] not in (None, action.default), (name, param, kw[param])
        if name == "perturb":
            assert args[2] == ["IFNG"]
        if name == "generate":
            assert args[1] == ["lung"]
    capsys.readouterr()


def test_errors_are_one_line_with_a_documented_status(monkeypatch, capsys, tmp_path):
    def boom(path):
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(c2s.io, "read_dataset", boom)
    code = main(["info", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "unexpected RuntimeError: something broke" in err
    assert "--debug" in err and "Traceback" not in err
    for argv in (["--debug", "info", str(tmp_path)], ["info", str(tmp_path), "--debug"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error:")
    monkeypatch.undo()
    code = main(["info", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ")


def test_evaluate_refuses_an_unknown_task(capsys, tmp_path, trained_model, pbmc_dataset):
    pytest.importorskip("torch")
    out = tmp_path / "ev"
    code = main(
        ["evaluate", str(trained_model), str(pbmc_dataset.path), "--out", str(out),
         "--tasks", "cell_type_prediction", "cell_typing"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "cell_typing" in err and "known tasks" in err
    assert not out.exists()


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def _flags(p: argparse.ArgumentParser) -> list:
    return [(a.dest, tuple(a.option_strings), a.default, a.required) for a in p._actions]


def test_a_command_line_builds_only_its_verb_and_the_same_options():
    """``main`` builds the parser of the named verb alone; the verb -> module table must name
    every verb the full parser has, and each lone parser must equal its part of the full one."""
    from c2s.cli import _COMMANDS, _verb

    full = _verbs(build_parser())
    listed = [v for verbs in _COMMANDS.values() for v in verbs]
    assert sorted(listed) == sorted(full)
    for verb in listed:
        alone = _verbs(build_parser(verb))
        assert verb in alone, f"build_parser({verb!r}) lacks {verb!r}: fix _COMMANDS"
        assert _flags(alone[verb]) == _flags(full[verb])
    assert _verb(["-v", "--debug", "train", "ds", "--out", "x"]) == "train"
    assert _verb(["--help"]) is None and _verb(["nonsense"]) is None
