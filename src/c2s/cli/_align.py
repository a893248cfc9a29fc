"""c2s align MODEL DATASET --out DIR [--task T] [--reward R[:WEIGHT] ...] [--config run.yaml]

One flag per field of :class:`c2s.train.AlignConfig` (generated, as for ``c2s train``).
Precedence: defaults < ``--config`` file < flags.
"""

from __future__ import annotations

import os

from c2s.cli import _flags as flags
from c2s.cli._common import emit, interrupted

MODEL_KEYS = ("device", "dtype")  # --config keys about loading the model


def register(sub) -> None:
    from c2s.train import AlignConfig

    flags.add_command(
        sub,
        "align",
        verb=AlignConfig,
        run=run,
        help="align a trained model with rewards that score biology (GRPO, through TRL)",
        description=(
            "Sample a group of answers per prompt of --task from the dataset's cells, score "
            "them with the rewards and update the model toward the better ones (Group "
            "Relative Policy Optimization). Rewards and the columns they read are checked "
            "before training. The output directory is a c2s model directory plus "
            "checkpoints/, train_log.json and alignment.png. Needs the rl extra: "
            "pip install 'c2s[rl]'."
        ),
    )


def run(args) -> int:
    from c2s.io import read_dataset
    from c2s.model import C2SModel
    from c2s.train import AlignConfig, align, check_run_dir, is_main_process

    opts, model_opts = flags.options_kwargs(args, AlignConfig, MODEL_KEYS)
    cfg = AlignConfig.from_dict(opts, source=args.config or "the flags")
    try:
        import trl  # noqa: F401
    except ImportError as e:
        raise ImportError("c2s align needs TRL: pip install 'c2s[rl]'") from e
    if is_main_process():
        check_run_dir(
            args.out, overwrite=args.overwrite, resume=cfg.resume, inputs=[args.dataset, args.model]
        )
    ds = read_dataset(args.dataset)
    model = C2SModel.from_pretrained(args.model, **model_opts)  # unset: C2SModel's defaults
    replacing = not cfg.resume and os.path.exists(args.out)
    try:
        result = align(model, ds, args.out, config=cfg, overwrite=args.overwrite)
    except KeyboardInterrupt:
        return interrupted(args.out, replacing=replacing)
    if not is_main_process():
        return 0
    out = result.to_dict()
    per_fn = ", ".join(
        f"{k} {v['first']:.3f} -> {v['last']:.3f}" for k, v in out["rewards"].items()
    )
    human = (
        f"Aligned {result.steps} steps in {out['seconds'] or 0:.1f} s "
        f"({out['tokens_per_second'] or 0:,.0f} tokens/s): mean reward "
        f"{_num(out['first_reward'])} -> {_num(out['last_reward'])} ({per_fn}).\n"
        f"Model saved in {args.out}"
    )
    emit(out, args.json, human)
    return 0


def _num(x) -> str:
    return "-" if x is None else f"{x:.3f}"
