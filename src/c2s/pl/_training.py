"""Training curves."""

from __future__ import annotations

from c2s.pl._figure import axes as _axes
from c2s.pl._figure import pyplot as _plt


def loss_curve(result, *, ax=None, title: str | None = None):
    """Training loss per logged step and evaluation loss, from a
    :class:`~c2s.train.TrainResult` (or its ``log_history`` list).

    Returns the matplotlib ``Axes``.
    """
    history = result if isinstance(result, list) else result.log_history
    train = [(h["step"], h["loss"]) for h in history if "loss" in h]
    ax = _axes(ax, (5.5, 3.8))
    if train:
        ax.plot(*zip(*train, strict=True), label="training", lw=0.8, color="0.55")
    per_task = {} if isinstance(result, list) else result.eval_curves()
    if len(per_task) > 1:
        for task, (steps, losses) in per_task.items():
            ax.plot(steps, losses, "o-", label=f"validation: {task}", ms=4)
    else:
        evals = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
        if evals:
            ax.plot(*zip(*evals, strict=True), "o-", label="validation", ms=4)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats per token)")
    ax.set_title(title or "loss")
    ax.legend(frameon=False)
    return ax


def reward_curves(log_history: list, *, title: str | None = None):
    """An alignment run's curves from its log history (``AlignResult.log_history`` or
    ``train_log.json``'s ``log``): the mean of each reward function and the weighted total,
    the KL to the starting model (when it was penalized) and the mean completion length, per
    optimizer step.

    Returns the matplotlib ``Figure``.
    """
    plt = _plt()
    rows = [h for h in log_history if "reward" in h]
    names = sorted({k for h in rows for k in h if k.startswith("rewards/") and k.endswith("/mean")})
    panels = [("reward", "mean reward")]
    if any("kl" in h for h in rows):
        panels.append(("kl", "KL to the start"))
    panels.append(("completions/mean_length", "completion length (tokens)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    steps = [h["step"] for h in rows]
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        if key == "reward":
            for name in names:
                short = name[len("rewards/") : -len("/mean")]
                ax.plot(steps, [h.get(name) for h in rows], lw=0.9, label=short.lstrip("_"))
            if len(names) != 1:
                ax.plot(steps, [h["reward"] for h in rows], color="k", lw=1.2, label="weighted")
            ax.legend(frameon=False, fontsize=8)
        else:
            ax.plot(steps, [h.get(key) for h in rows], lw=0.9, color="C0")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(label)
    fig.suptitle(title or "alignment (GRPO)")
    return fig
