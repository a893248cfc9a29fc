"""What :func:`~c2s.tl.screen` returns: the table of effects, its report (Markdown) and its
plot, and the three files ``c2s screen`` writes (screen.csv, report.md, screen.png)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from c2s._errors import C2SError
from c2s.tl._results import _FrameLike

FILES = ("screen.csv", "report.md", "screen.png")


@dataclass(eq=False)
class ScreenResult(_FrameLike):
    """A virtual screen's outcome.

    ``table`` has one row per perturbation (``effect_<ctx>``, ``low_<ctx>``, ``high_<ctx>``,
    ``rank_<ctx>``, ``split``, ``rank_split``; sorted by ``split``, largest first) and
    ``table.attrs["c2s"]`` the settings and the controls' programme scores (also ``info``);
    ``seconds`` is how long the screen took (its report says it).

    For one release the result also answers the DataFrame calls on the table
    (``result["split"]``, ``result.index`` ...) that ``screen`` allowed when it returned the
    table, with a warning that names ``.to_frame()``.
    """

    table: pd.DataFrame
    seconds: float = math.nan

    _before = "screen returned the table before"

    @property
    def info(self) -> dict:
        return self.table.attrs["c2s"]

    @property
    def contexts(self) -> list[str]:
        return list(self.info["contexts"])

    def __len__(self) -> int:
        return len(self.table)

    def to_frame(self) -> pd.DataFrame:
        """The table (``attrs["c2s"]`` holds ``info``)."""
        return self.table

    def top(self, n: int = 8) -> pd.DataFrame:
        """The ``n`` rows of the largest context splits."""
        return self.table.head(_check_top(n))

    def report(self, top: int = 8) -> str:
        """The Markdown report (``report.md``): the settings, then the ``top`` perturbations
        by context split with their effects and 95% intervals."""
        info, table = self.info, self.table
        first, second = info["contexts"][:2]
        control = info["control_score"]
        lines = [
            "# Virtual screen",
            "",
            f"Programme ({len(info['program'])} genes): {', '.join(info['program'])}. Controls' "
            f"programme score: {first} {control[first]:.4f}, {second} "
            f"{control[second]:.4f}. {info['n_samples']} predicted cells per control "
            f"and perturbation, {info['n_genes']} genes each ({info['n_predicted_cells']} cells "
            f"in {self.seconds:.1f} s). Effects are predicted programme score minus the "
            "controls', with 95% bootstrap intervals; the split is the first context's effect "
            "minus the second's.",
            "",
            f"| perturbation | effect in {first} [95%] | effect in {second} [95%] | split "
            "| rank by split |",
            "|---|---|---|---|---|",
        ]
        for name, row in table.head(_check_top(top)).iterrows():
            lines.append(
                f"| {name} | {_effect(row, first)} | {_effect(row, second)} | "
                f"{row['split']:.4f} | {int(row['rank_split'])} |"
            )
        lines += ["", "![effect in each context](screen.png)", "", "All rows: screen.csv.", ""]
        return "\n".join(lines)

    def plot(self, target=None, *, top: int = 8, title: str | None = None):
        """The effect in the first context against the second, the ``top`` splits labelled
        (:func:`c2s.pl.screen_scatter`): drawn into ``target`` when it is a matplotlib Axes,
        saved as ``target`` when it is a path (the figure closed), else on a new figure.
        Returns the Axes."""
        from c2s.pl import save_figure, screen_scatter

        to_file = isinstance(target, str | os.PathLike)
        ax = None if to_file else target
        ax = screen_scatter(self.table, self.contexts, top=_check_top(top), ax=ax, title=title)
        if to_file:
            save_figure(ax, target)
        return ax

    def write_files(self, directory: str | os.PathLike, *, top: int = 8) -> None:
        """Write screen.csv, report.md and screen.png into ``directory`` (an existing one):
        what ``c2s screen`` writes. Without matplotlib there is no screen.png (a warning)."""
        from c2s.tl._inputs import warn

        directory = Path(directory)
        _check_top(top)
        self.table.to_csv(directory / "screen.csv", index_label="perturbation")
        try:
            self.plot(directory / "screen.png", top=top)
        except ImportError as e:  # matplotlib is optional: the table and report still come
            warn(f"no screen.png: {e}")
        (directory / "report.md").write_text(self.report(top))

    def write(
        self, out: str | os.PathLike, *, top: int = 8, overwrite: bool = False, inputs=()
    ) -> Path:
        """Write the screen's directory ``out`` as ``c2s screen --out`` does: its three files
        (:meth:`write_files`), complete or not at all; an existing ``out`` needs
        ``overwrite`` and must be a screen's. ``inputs``: paths the output must not touch."""
        from c2s._atomic import atomic_dir

        _check_top(top)
        with atomic_dir(out, overwrite=overwrite, kind="screen", inputs=inputs) as tmp:
            self.write_files(tmp, top=top)
        return Path(out)


def _check_top(top: int) -> int:
    if top < 0:
        raise C2SError(f"top must be 0 or more (the hits to label), got {top}.")
    return top


def _effect(row, context: str) -> str:
    """A context's effect and its 95% interval, as the report writes them."""
    effect, low, high = (row[f"{part}_{context}"] for part in ("effect", "low", "high"))
    return f"{effect:.4f} [{low:.4f}, {high:.4f}]"


__all__ = ["ScreenResult"]
