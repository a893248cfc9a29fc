"""Options shared by every part of an evaluation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EvalOptions:
    """What every part of an evaluation shares (see :func:`evaluate`)."""

    split: str = "test"
    batch_size: int = 16
    seed: int = 0
    progress_bar: bool | None = None
    tasks: list | None = None
    n_genes: int | None = None
    organism: str | None = None

    def verb_kw(self) -> dict:
        """Keyword arguments every model verb takes."""
        kw = {"batch_size": self.batch_size, "progress_bar": self.progress_bar}
        if self.n_genes:
            kw["n_genes"] = self.n_genes
        if self.organism:
            kw["organism"] = self.organism
        return kw
