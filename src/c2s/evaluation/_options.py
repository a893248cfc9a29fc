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
    temperature: float | None = None  # generation: None takes c2s.tl.generate's default
    top_p: float | None = None
    model_frechet: bool = False  # generation: also the Frechet distance in the model's space
    parts: tuple | None = None  # only these parts (None: all that apply)
    max_cells: int | None = 10_000  # evaluated (and validation) cells: a stratified sample
    max_train_cells: int | None = 50_000  # training cells the baselines and k-NN use
    n_samples: int = 5  # perturbation: predicted cells per control and perturbation

    def wants(self, part: str) -> bool:
        return self.parts is None or part in self.parts

    def verb_kw(self) -> dict:
        """Keyword arguments every model verb takes."""
        kw = {"batch_size": self.batch_size, "progress_bar": self.progress_bar}
        if self.n_genes:
            kw["n_genes"] = self.n_genes
        if self.organism:
            kw["organism"] = self.organism
        return kw

    def sampling_kw(self) -> dict:
        """Sampling options given for generation (the rest are the verb's defaults)."""
        kw = {"temperature": self.temperature, "top_p": self.top_p}
        return {k: v for k, v in kw.items() if v is not None}
