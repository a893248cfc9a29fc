"""Tasks: what each task renders from cells, and how answers are read back.

A task is single-cell (one cell per example), multi-cell (a group of cells per example,
grouped by obs keys) or paired (a perturbed cell with a control from the same context).
Cell sentences are rendered as text only here, and only for the ``n_genes`` genes used.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from c2s._errors import C2SError
from c2s.prompts._templates import Template, load_profile
from c2s.sentences import CellSentences

# Placeholders a task fills itself; every other placeholder is an obs column (or a constant).
COMPUTED = {
    "num_genes",
    "num_cells",
    "cell_sentence",
    "multi_cell_sentences",
    "control_cell_sentence",
    "perturbed_cell_sentence",
    "perturbation_name",
}


@dataclass
class Example:
    """One rendered example: the prompt, the expected response, and where it came from."""

    prompt: str
    response: str
    task: str
    cells: tuple[int, ...]  # row indices of the cells used (control first for pairs)
    n_genes: int
    template: int = 0

    @property
    def text(self) -> str:
        """Training text without EOS: ``prompt + " " + response``."""
        return f"{self.prompt} {self.response}"


def sentence_texts(cs: CellSentences, rows: Sequence[int], k: int) -> list[str]:
    """Top-``k`` sentences of ``rows`` as upper-cased gene names joined by spaces."""
    names = cs.vocab.display_names
    out = []
    for i in rows:
        a = cs.offsets[i]
        b = min(cs.offsets[i + 1], a + k)
        out.append(" ".join(names[cs.genes[a:b]].tolist()))
    return out


def multi_cell_text(sentences: Sequence[str]) -> str:
    """``Cell 1:\\n{s1}.\\nCell 2:\\n{s2}.\\n...``: the released models' multi-cell layout."""
    return "".join(f"Cell {i}:\n{s}.\n" for i, s in enumerate(sentences, start=1))


_TRAILING = re.compile(r"[\s.]+$")


@dataclass
class Task:
    """A prompt task.

    Parameters
    ----------
    name
        Registry name.
    kind
        ``"single"``, ``"multi"`` or ``"pair"``.
    answer
        What the response holds: ``"label"`` (an obs value), ``"cells"`` (generated
        sentences) or ``"text"`` (free text).
    label
        The obs column the answer comes from (label and text answers).
    templates
        Templates per profile; defaults to the packaged profiles under ``name``.
    """

    name: str
    kind: Literal["single", "multi", "pair"]
    answer: Literal["label", "cells", "text"]
    label: str | None = None
    templates: dict[str, tuple[Template, ...]] = field(default_factory=dict)

    def templates_for(self, profile: str) -> tuple[Template, ...]:
        if profile in self.templates:
            return self.templates[profile]
        found = load_profile(profile).get(self.name)
        if not found:
            raise C2SError(f"Task {self.name!r} has no templates in profile {profile!r}.")
        return found

    def columns(self, profile: str = "compat") -> set[str]:
        """obs columns (or constants) the task's templates need."""
        need = set()
        for t in self.templates_for(profile):
            need |= t.fields - COMPUTED
        return need

    def parse(self, text: str):
        """Read a model answer back: a label string, a list of gene names, or free text."""
        body = text.strip()
        if self.answer == "label":
            return _TRAILING.sub("", body.splitlines()[0] if body else "")
        if self.answer == "cells":
            if self.kind == "multi":
                cells = re.split(r"Cell \d+:\s*", body)
                return [_TRAILING.sub("", c).split() for c in cells if _TRAILING.sub("", c)]
            return _TRAILING.sub("", body).split()
        return _TRAILING.sub("", body)


def names_no_perturbation(name: str) -> bool:
    """Whether a perturbation name names nothing: blank, or a combination (``A+B``) with an
    empty part (``"+"``, ``"A+"``); its prompt would name no perturbation."""
    return any(not part.strip() for part in str(name).split("+"))
