"""c2s train DATASET --out DIR [--model M | --preset P] [--config run.yaml] [options]

One flag per field of :class:`c2s.train.TrainConfig` (generated, so the CLI, the YAML file and
the Python API always agree). Precedence: defaults < ``--config`` file < flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import types
import typing

from c2s.cli._common import add_json, emit

# Keys a --config file may hold besides the TrainConfig fields (the model to start from).
MODEL_KEYS = ("model", "preset", "architecture", "dropout", "device", "dtype")


def _flag_kwargs(tp) -> dict:
    """argparse options for a field type (``int | None`` -> ``type=int`` ...)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        tp = args[0]
    if tp is bool:
        return {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(tp) is list:
        # ``--tasks a b`` and ``--tasks a --tasks b`` both give [a, b]
        return {"nargs": "+", "action": "extend", "type": typing.get_args(tp)[0], "metavar": "X"}
    return {"type": tp}


def add_config_flags(parser, cls, *, title: str = "training options") -> None:
    """One ``--flag`` per dataclass field, with its help (and the field's ``flags`` metadata
    as other names); unset flags stay absent."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(f"{title} (also valid as keys of --config)")
    for f in dataclasses.fields(cls):
        kw = _flag_kwargs(hints[f.name])
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        help_text = f.metadata.get("help", "")
        if "choices" in f.metadata:
            kw["choices"] = f.metadata["choices"]
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            *f.metadata.get("flags", ()),
            dest=f.name,
            default=argparse.SUPPRESS,
            help=help_text if default is None else f"{help_text} (default: {default})",
            **kw,
        )


def register(sub) -> None:
    from c2s.train import TrainConfig

    p = sub.add_parser(
        "train",
        help="fine-tune a model, or train one from scratch, on a c2s dataset",
        description=(
            "Train on the dataset's train split with the evaluation loss on its validation "
            "split. The output directory is a plain Hugging Face model directory plus "
            "c2s_config.json, checkpoints/, split.json and train_log.json. Under torchrun or "
            "accelerate launch, runs data-parallel."
        ),
    )
    p.add_argument("dataset", help="c2s dataset directory")
    p.add_argument("--out", required=True, help="run / model directory to create")
    src = p.add_argument_group("model to train (default: a new model, --preset small)")
    src.add_argument("--model", help="hub id or directory of a causal LM to fine-tune")
    src.add_argument("--preset", choices=["tiny", "small", "base"], help="from-scratch size")
    src.add_argument(
        "--architecture",
        choices=["gpt_neox", "gpt2", "llama", "gemma2"],
        help="from-scratch architecture (default gpt_neox, as the released models)",
    )
    src.add_argument(
        "--dropout", type=float, help="from-scratch dropout probability (default: none)"
    )
    src.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, mps")
    src.add_argument("--dtype", help="auto (default), float32, bfloat16, float16")
    src.add_argument(
        "--load-in-4bit", action="store_true", help="QLoRA: load the model in 4 bits (CUDA only)"
    )
    p.add_argument("--config", help="YAML file of training options (flags override it)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    add_config_flags(p, TrainConfig)
    add_json(p)
    p.set_defaults(run=run)


def interrupted(out, *, replacing: bool = False) -> int:
    """Say what an interrupted run left (the previous run it was to replace, or checkpoints to
    resume from, or nothing) and how to go on; exit status 130."""
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


def split_options(args, cls, model_keys) -> tuple[dict, dict]:
    """(options of the dataclass ``cls``, model options) from --config and the flags; flags
    win over the file."""
    from c2s.train import read_yaml

    file_opts = read_yaml(args.config) if args.config else {}
    model_opts = {k: file_opts.pop(k) for k in model_keys if k in file_opts}
    for k in model_keys:
        if getattr(args, k, None) is not None:
            model_opts[k] = getattr(args, k)
    names = {f.name for f in dataclasses.fields(cls)}
    flags = {k: v for k, v in vars(args).items() if k in names}
    return {**file_opts, **flags}, model_opts


def run(args) -> int:
    from c2s._errors import C2SError
    from c2s._logging import progress
    from c2s.io import read_dataset
    from c2s.model import C2SModel, check_dtype
    from c2s.train import TrainConfig, check_run_dir, fine_tune, is_main_process

    train_opts, model_opts = split_options(args, TrainConfig, MODEL_KEYS)
    cfg = TrainConfig.from_dict(train_opts, source=args.config or "the flags")
    if check_dtype(model_opts.get("dtype")) not in (None, "auto") and "model" not in model_opts:
        import warnings

        warnings.warn(
            "--dtype is the precision a --model is loaded in; a new model is built in float32 "
            "(and trained so), so it is ignored here.",
            stacklevel=2,
        )
    if is_main_process():
        inputs = [args.dataset, model_opts.get("model")]
        check_run_dir(args.out, overwrite=args.overwrite, resume=cfg.resume, inputs=inputs)
    ds = read_dataset(args.dataset)
    device = model_opts.get("device", "auto")
    if "model" in model_opts:
        if {"preset", "architecture", "dropout"} & set(model_opts):
            raise C2SError(
                "Give either --model (fine-tune) or --preset/--architecture/--dropout (new model)."
            )
        model = C2SModel.from_pretrained(
            model_opts["model"],
            device=device,
            dtype=model_opts.get("dtype", "auto"),
            load_in_4bit=args.load_in_4bit,
        )
    else:
        with progress(total=1, desc="building the model", unit="model") as bar:
            model = C2SModel.from_scratch(
                ds,
                preset=model_opts.get("preset", "small"),
                architecture=model_opts.get("architecture", "gpt_neox"),
                dropout=model_opts.get("dropout"),
                max_length=cfg.max_length or 1024,
                seed=cfg.seed,
                device=device,
                texts=[cfg.organism] if cfg.organism else (),
            )
            bar.update()
    replacing = not cfg.resume and os.path.exists(args.out)  # stopped, it keeps the old run
    try:
        result = fine_tune(model, ds, cfg, output_dir=args.out, overwrite=args.overwrite)
    except KeyboardInterrupt:
        return interrupted(args.out, replacing=replacing)
    if not is_main_process():
        return 0  # under torchrun / accelerate launch, rank 0 reports
    out = {k: v for k, v in result.to_dict().items() if k != "log_history"}
    human = (
        f"Trained {result.steps} steps ({result.epochs:.2f} epochs) on {result.n_train_examples} "
        f"examples in {result.seconds:.1f} s: training loss {result.train_loss:.4f}"
        + (f", validation loss {result.eval_loss:.4f}" if result.eval_loss is not None else "")
        + f"; {result.tokens_per_second:,.0f} tokens/s, {result.padded_fraction:.1%} padding.\n"
        f"Model saved in {args.out}"
    )
    emit(out, args.json, human)
    return 0
