"""The flag builder (``c2s.cli._flags``): every flag of every subcommand is made by it, every
parameter of the verbs is reachable from the command line with the verb's default (minus the
table's explicit exclusions), and the old spellings of renamed flags still work, with a
warning that names the new one."""

from __future__ import annotations

import argparse
import functools
import inspect
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pytest

import c2s
from c2s.cli import _flag_lookup, _flag_read, _flag_table, _flags, build_parser, main

CLI = Path(c2s.__file__).parent / "cli"


def parsers(parser: argparse.ArgumentParser, prefix: str = ""):
    """(command, parser) of every (sub)command, ``"inverse fit"`` for a nested one."""
    yield prefix.strip(), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, f"{prefix} {name}")


def commands() -> dict[str, argparse.ArgumentParser]:
    return {name: p for name, p in parsers(build_parser()) if hasattr(p, "c2s_command")}


# -- every flag is generated ------------------------------------------------------------------
def test_every_flag_is_made_by_the_builder():
    for name, parser in parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue  # argparse's own
            made = getattr(action, "c2s_flag", None)
            assert isinstance(made, _flags.Made), (
                f"c2s {name} {action.option_strings or action.dest}: not made by the builder"
            )


def test_no_flag_is_written_by_hand_outside_the_builder():
    for path in sorted(CLI.glob("*.py")):
        if path.name != "_flags.py":
            assert ".add_argument(" not in path.read_text(), f"{path.name} adds a flag by hand"


def test_every_command_is_built_from_its_verb():
    from c2s import evaluation, inverse, io, prompts, quickstart, serve, tl, train

    expected = {
        "predict": tl.predict,
        "embed": tl.embed,
        "generate": tl.generate,
        "perturb": tl.perturb,
        "describe": tl.describe,
        "screen": tl.screen,
        "convert": io.convert,
        "export": io.export_reference,
        "import-reference": io.import_reference,
        "evaluate": evaluation.evaluate,
        "train": train.TrainConfig,
        "align": train.AlignConfig,
        "inverse fit": inverse.fit_inverse,
        "inverse eval": inverse.fit_inverse,
        "inverse reconstruct": inverse.reconstruct,
        "prompt": prompts.Renderer,
        "quickstart": quickstart.run_quickstart,
        "serve": serve.create_app,
        "info": None,
    }
    built = {name: p.c2s_command for name, p in commands().items()}
    assert set(built) == set(expected)
    for name, verb in expected.items():
        assert built[name] == (name, verb), name


def test_every_flag_has_help_and_every_help_renders():
    for name, parser in parsers(build_parser()):
        parser.format_help()  # a stray % in a docstring would fail here
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
                continue
            text = (action.help or "").strip()
            assert text and not text.startswith("("), f"c2s {name} {action.option_strings}"


# -- every parameter is reachable, with the verb's default ------------------------------------
def excluded(name: str, params) -> dict:
    spec = _flag_lookup.spec_of(name)
    common = {k: v for k, v in _flag_table.COMMON_EXCLUDED.items() if k in params}
    return {**common, **spec.exclude}


def minimal_argv(parser: argparse.ArgumentParser) -> list[str]:
    """A command line giving only what the parser requires."""
    argv, options, done = [], [], set()
    for group in parser._mutually_exclusive_groups:
        if group.required:
            first = group._group_actions[0]
            options += [first.option_strings[0], "x"]
            done.update(group._group_actions)
    for action in parser._actions:
        if action in done:
            continue
        if not action.option_strings:
            argv.append("x")
        elif action.required:
            value = action.choices[0] if action.choices else "1"
            options += [action.option_strings[0], str(value)]
    return argv + options


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_parameter_is_reachable_with_the_verbs_default(name):
    parser = commands()[name]
    _, verb = parser.c2s_command
    params = _flag_read.parameters(verb)
    skip = excluded(name, params)
    for key in skip:
        assert key in params, f"c2s {name} excludes {key!r}, which the verb does not have"
    made = {}
    for action in parser._actions:
        param = getattr(action, "c2s_flag", _flags.Made(None)).param
        if param is not None:
            assert param not in made, f"c2s {name}: two flags set {param}"
            made[param] = action
    for key in params:
        assert (key in made) != (key in skip), f"c2s {name}: {key} is neither a flag nor excluded"
    spec = _flag_lookup.spec_of(name)
    args = parser.parse_args(minimal_argv(parser))
    if spec.config:  # unset options stay absent: the dataclass's defaults apply
        options, _ = _flags.options_kwargs(args, verb)
        assert options == {} and verb.from_dict(options) == verb()
        return
    kwargs = _flags.verb_kwargs(args)
    for key, param in params.items():
        if key in skip or param.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        if param.default is inspect.Parameter.empty:
            continue  # required: no default to agree on
        _, _, unset, _ = args.c2s_params[made[key].dest]
        if unset:  # not passed unless given: the verb's default applies
            assert key not in kwargs, (name, key)
        else:
            assert kwargs[key] == param.default, (
                f"c2s {name} --{key.replace('_', '-')} gives {kwargs[key]!r}, the verb's default "
                f"is {param.default!r}"
            )


def test_a_stale_table_entry_is_an_error():
    with pytest.raises(TypeError, match="nope"):
        _flags.check_spec(_flags.Spec(exclude={"nope": "gone"}), {"a": None})
    with pytest.raises(TypeError, match="nope"):
        _flags.check_spec(_flags.Spec(flags={"nope": _flags.flag(help="x")}), {"a": None})


def test_types_and_help_are_read_from_the_signature_and_docstring():
    def verb(
        data,
        *,
        mode: Literal["a", "b"] = "a",
        n: int | None = None,
        keys: Sequence[str] | None = None,
        on: bool = False,
        key: str | None = "k",
    ):
        """Do it.

        Parameters
        ----------
        data
            The cells.
        mode, n
            How (``"a"``: see :func:`~c2s.tl.predict`); 100% sure.
        on
            Switch
            it on.

        Returns
        -------
        Nothing.
        """

    docs = _flag_read.param_docs(verb)
    assert docs == {
        "data": "The cells.",
        "mode": 'How ("a": see predict); 100% sure.',
        "n": 'How ("a": see predict); 100% sure.',
        "on": "Switch it on.",
    }
    params = _flag_read.parameters(verb)
    assert _flag_read.kind(params["mode"].annotation, "a") == (str, ["a", "b"], False, False)
    assert _flag_read.kind(params["n"].annotation, None) == (int, None, False, True)
    assert _flag_read.kind(params["keys"].annotation, None) == (str, None, True, True)
    assert _flag_read.kind(params["on"].annotation, False)[0] is bool
    assert _flag_read.kind(params["key"].annotation, "k") == (str, None, False, True)


# -- deprecated spellings ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "dest", "value", "old", "new"),
    [
        (
            ["predict", "M", "in.h5ad", "--out", "o.csv", "--top-k", "3"],
            "top_labels",
            3,
            "--top-k",
            "--top-labels",
        ),
        (["convert", "in.h5ad", "ds", "--top-k", "7"], "n_genes", 7, "--top-k", "--n-genes"),
        (
            ["convert", "in.h5ad", "ds", "--split", "0.5,0.25,0.25"],
            "split_fractions",
            "0.5,0.25,0.25",
            "--split",
            "--split-fractions",
        ),
        (
            ["import-reference", "arrow", "ds", "--split", "0.5,0.5,0"],
            "split_fractions",
            "0.5,0.5,0",
            "--split",
            "--split-fractions",
        ),
        (
            ["align", "M", "ds", "--out", "o", "--steps", "4"],
            "max_steps",
            4,
            "--steps",
            "--max-steps",
        ),
    ],
)
def test_an_old_flag_spelling_works_and_warns(argv, dest, value, old, new):
    args = build_parser().parse_args(argv)
    assert getattr(args, dest) == value
    assert args.c2s_renamed == [(old, new)]
    with pytest.warns(FutureWarning, match=f"{old} is now called {new}"):
        _flags.warn_renamed_flags(args)
    parser = commands()[" ".join(argv[:1])]
    action = next(a for a in parser._actions if old in a.option_strings)
    assert action.option_strings[0] == new and "deprecated" in action.help
    args = build_parser().parse_args([a if a != old else new for a in argv])
    assert getattr(args, dest) == value and not hasattr(args, "c2s_renamed")


def test_an_old_flag_reaches_the_verb_with_a_warning_on_stderr(monkeypatch, capsys, tmp_path):
    calls = {}

    def record(verb):
        @functools.wraps(verb)
        def fake(*args, **kwargs):
            calls[verb.__name__] = kwargs
            raise KeyboardInterrupt  # stop there (exit status 130)

        return fake

    monkeypatch.setattr(c2s.io, "convert", record(c2s.io.convert))
    argv = ["convert", str(tmp_path / "in.h5ad"), str(tmp_path / "ds"), "--top-k", "7"]
    assert main([*argv, "--split", "0.5,0.25,0.25"]) == 130
    err = capsys.readouterr().err
    assert "warning: --top-k is now called --n-genes" in err
    assert "warning: --split is now called --split-fractions" in err
    assert calls["convert"]["n_genes"] == 7
    assert calls["convert"]["split_fractions"] == "0.5,0.25,0.25"


def test_convert_with_the_old_top_k_flag_writes_what_n_genes_writes(
    capsys, tmp_path, lognorm_adata
):
    h5ad = tmp_path / "cells.h5ad"
    lognorm_adata.write_h5ad(h5ad)
    assert main(["convert", str(h5ad), str(tmp_path / "old"), "--top-k", "7"]) == 0
    assert re.search(r"warning: --top-k is now called --n-genes", capsys.readouterr().err)
    assert main(["convert", str(h5ad), str(tmp_path / "new"), "--n-genes", "7"]) == 0
    assert "warning" not in capsys.readouterr().err
    old, new = (c2s.io.read_dataset(tmp_path / d).sentences() for d in ("old", "new"))
    assert old.lengths.max() == 7
    assert (old.genes == new.genes).all() and (old.offsets == new.offsets).all()


def test_an_old_key_in_the_config_file_and_the_new_flag(tmp_path):
    """A run.yaml written before the rename (``steps:``) with ``--max-steps`` on the command
    line: the file's key is read under its new name (warned) and the flag wins."""
    from c2s.train import AlignConfig

    cfg = tmp_path / "align.yaml"
    cfg.write_text("steps: 7\nlearning_rate: 0.001\n")
    args = build_parser().parse_args(
        ["align", "M", "ds", "--out", "o", "--config", str(cfg), "--max-steps", "3"]
    )
    with pytest.warns(FutureWarning, match="steps is now called max_steps"):
        opts, _ = _flags.options_kwargs(args, AlignConfig)
    assert opts["max_steps"] == 3 and "steps" not in opts and opts["learning_rate"] == 0.001


@pytest.mark.parametrize(
    ("action", "argv", "value"),
    [
        ("store", ["--old", "v"], "v"),
        ("store_true", ["--old"], True),
        ("store_false", ["--old"], False),
        ("extend", ["--old", "a", "b"], ["a", "b"]),
        (argparse.BooleanOptionalAction, ["--old"], True),
    ],
)
def test_a_renamed_flag_keeps_what_its_action_does(action, argv, value):
    parser = argparse.ArgumentParser()
    renamed = _flags._renamed_action(action, "--new", ("--old",))
    extra = {"nargs": "+"} if action == "extend" else {}
    parser.add_argument("--new", "--old", action=renamed, dest="x", **extra)
    args = parser.parse_args(argv)
    assert args.x == value and args.c2s_renamed == [("--old", "--new")]
    new = parser.parse_args(["--new", *argv[1:]])
    assert new.x == value and not hasattr(new, "c2s_renamed")


# -- what the library defines, the command line does not copy ---------------------------------
def test_choices_are_the_librarys_constants():
    from c2s.inverse import InverseModel
    from c2s.model import ARCHITECTURES, PRESETS
    from c2s.prompts import PROFILES
    from c2s.sources import GENE_MODES

    expected = {
        ("convert", "--genes"): GENE_MODES,
        ("inverse fit", "--model"): ("auto", *sorted(InverseModel.registry)),
        ("prompt", "--profile"): PROFILES,
        ("quickstart", "--preset"): tuple(PRESETS),
        ("train", "--preset"): tuple(PRESETS),
        ("train", "--architecture"): ARCHITECTURES,
    }
    parsers_by_name = commands()
    for (name, option), choices in expected.items():
        parser = parsers_by_name[name]
        action = next(a for a in parser._actions if option in a.option_strings)
        assert tuple(action.choices) == tuple(choices), f"c2s {name} {option}"
    table = Path(_flag_table.__file__).read_text()
    for copied in ('"gpt_neox", "gpt2"', '"tiny", "small"', '"compat", "paraphrase"', '"union"'):
        assert copied not in table, f"_flag_table.py copies the library's {copied}"


def test_train_passes_only_the_model_options_given(monkeypatch):
    """Unset options are C2SModel's own defaults (those the command always used), but a new
    model's size is the command's NEW_MODEL_PRESET."""
    from c2s._errors import C2SError
    from c2s.cli import _train
    from c2s.model import C2SModel
    from c2s.train import TrainConfig

    scratch = inspect.signature(C2SModel.from_scratch).parameters
    assert (scratch["architecture"].default, scratch["max_length"].default) == ("gpt_neox", 1024)
    assert scratch["device"].default == "auto" and scratch["dropout"].default is None
    pretrained = inspect.signature(C2SModel.from_pretrained).parameters
    assert pretrained["device"].default == "auto" and pretrained["dtype"].default == "auto"
    calls = []
    monkeypatch.setattr(C2SModel, "from_scratch", lambda *a, **kw: calls.append((a, kw)))
    monkeypatch.setattr(C2SModel, "from_pretrained", lambda *a, **kw: calls.append((a, kw)))

    def model(cfg=None, **opts):
        calls.clear()
        _train._model("ds", cfg or TrainConfig(), opts, load_in_4bit=False)
        return calls[0]

    assert model() == (("ds",), {"preset": _train.NEW_MODEL_PRESET, "seed": 0})
    assert _train.NEW_MODEL_PRESET == "small"
    given = model(TrainConfig(max_length=64, organism="Danio rerio", seed=3), device="cpu")
    assert given == (
        ("ds",),
        {"preset": "small", "seed": 3, "device": "cpu", "max_length": 64, "texts": ["Danio rerio"]},
    )
    assert model(preset="tiny", architecture="llama", dropout=0.1)[1] == {
        "preset": "tiny",
        "seed": 0,
        "architecture": "llama",
        "dropout": 0.1,
    }
    assert model(model="M") == (("M",), {"load_in_4bit": False})
    assert model(model="M", dtype="bfloat16")[1] == {"load_in_4bit": False, "dtype": "bfloat16"}
    with pytest.raises(C2SError, match="Give either --model"):
        model(model="M", preset="tiny")


def test_screen_input_help_names_soma():
    action = next(a for a in commands()["screen"]._actions if a.dest == "input")
    assert "SOMA experiment" in action.help
