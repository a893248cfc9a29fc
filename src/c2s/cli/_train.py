"""c2s train DATASET --out DIR [--model M | --preset P] [--config run.yaml] [options]

One flag per field of :class:`c2s.train.TrainConfig` (generated, so the CLI, the YAML file and
the Python API always agree). Precedence: defaults < ``--config`` file < flags.
"""

from __future__ import annotations

import os

from c2s.cli import _flags as flags
from c2s.cli._common import emit, interrupted
from c2s.cli._flag_table import NEW_MODEL_PRESET

# Keys a --config file may hold besides the TrainConfig fields (the model to start from).
MODEL_KEYS = ("model", "preset", "architecture", "dropout", "device", "dtype")


def register(sub) -> None:
    from c2s.train import TrainConfig

    flags.add_command(
        sub,
        "train",
        verb=TrainConfig,
        run=run,
        help="fine-tune a model, or train one from scratch, on a c2s dataset",
        description=(
            "Train on the dataset's train split with the evaluation loss on its validation "
            "split. The output directory is a plain Hugging Face model directory plus "
            "c2s_config.json, checkpoints/, split.json and train_log.json. Under torchrun or "
            "accelerate launch, runs data-parallel."
        ),
    )


def run(args) -> int:
    from c2s.io import read_dataset
    from c2s.model import check_dtype
    from c2s.train import TrainConfig, check_run_dir, fine_tune, is_main_process

    train_opts, model_opts = flags.options_kwargs(args, TrainConfig, MODEL_KEYS)
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
    model = _model(ds, cfg, model_opts, load_in_4bit=args.load_in_4bit)
    replacing = not cfg.resume and os.path.exists(args.out)  # stopped, it keeps the old run
    try:
        result = fine_tune(model, ds, cfg, out=args.out, overwrite=args.overwrite)
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


def _model(ds, cfg, model_opts: dict, *, load_in_4bit: bool):
    """The model to train: ``model_opts["model"]`` loaded, else a new one built for ``ds``;
    only the options given are passed (the rest are :class:`~c2s.model.C2SModel`'s
    defaults, but a new model's size is :data:`NEW_MODEL_PRESET`)."""
    from c2s._errors import C2SError
    from c2s._logging import progress
    from c2s.model import C2SModel

    if "model" in model_opts:
        if {"preset", "architecture", "dropout"} & set(model_opts):
            raise C2SError(
                "Give either --model (fine-tune) or --preset/--architecture/--dropout (new model)."
            )
        load = {k: model_opts[k] for k in ("device", "dtype") if k in model_opts}
        return C2SModel.from_pretrained(model_opts["model"], load_in_4bit=load_in_4bit, **load)
    build = {k: model_opts[k] for k in ("device", "architecture", "dropout") if k in model_opts}
    if cfg.max_length:
        build["max_length"] = cfg.max_length
    if cfg.organism:
        build["texts"] = [cfg.organism]
    preset = model_opts.get("preset", NEW_MODEL_PRESET)
    with progress(total=1, desc="building the model", unit="model") as bar:
        model = C2SModel.from_scratch(ds, preset=preset, seed=cfg.seed, **build)
        bar.update()
    return model
