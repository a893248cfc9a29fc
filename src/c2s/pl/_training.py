"""Training curves."""

from __future__ import annotations

from c2s.pl._figure import pyplot as _plt


def loss_curve(result, *, ax=None, title: str | None = None):
    """Training loss per logged step and evaluation loss, from a
    :class:`~c2s.train.TrainResult` (or its ``log_history`` list).

    Returns the matplotlib ``Axes``.
    """
    plt = _plt()
    history = result if isinstance(result, list) else result.log_history
    train = [(h["step"], h["loss"]) for h in history if "loss" in h]
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.8))
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
