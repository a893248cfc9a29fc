"""Rendering a task's examples from cell sentences: the plan (which cells, which template:
single cells, groups of cells sharing obs values, or (control, perturbed) pairs), then the
text of each example."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from c2s._errors import C2SError
from c2s.prompts._registry import get_task
from c2s.prompts._tasks import (
    COMPUTED,
    Example,
    Task,
    multi_cell_text,
    names_no_perturbation,
    sentence_texts,
)
from c2s.prompts._templates import Template
from c2s.sentences import CellSentences


def _check_fields(task: Task, profile: str, obs: pd.DataFrame, constants: dict) -> None:
    missing = sorted(
        c for c in task.columns(profile) if c not in obs.columns and c not in constants
    )
    if missing:
        have = ", ".join(map(str, obs.columns)) or "none"
        raise C2SError(
            f"Task {task.name!r} needs {missing} for its {profile!r} templates, but the data has "
            f"no such obs column (columns: {have}). Add the column, or pass it as a constant "
            f"(e.g. organism='Homo sapiens' / --organism)."
        )


def _clean_labels(obs: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Rows whose needed columns are all present; warns with the count of dropped rows."""
    keep = np.ones(len(obs), dtype=bool)
    for c in columns:
        if c in obs.columns:
            col = obs[c]
            keep &= ~(col.isna().to_numpy() | (col.astype(str).str.strip() == "").to_numpy())
    dropped = int((~keep).sum())
    if dropped:
        import warnings

        warnings.warn(
            f"{dropped} of {len(obs)} cells have no value in {list(columns)} and are left out.",
            stacklevel=3,
        )
    return np.flatnonzero(keep)


class Renderer:
    """Renders a task's examples from :class:`~c2s.sentences.CellSentences`.

    Parameters
    ----------
    task
        The task (or its registry name).
    profile
        ``"compat"`` (released-model formats, the default) or ``"paraphrase"``.
    n_genes
        Genes per cell sentence (``num_genes`` in the prompt says this number even when a cell
        has fewer genes, as the released models saw in training).
    seed
        Seed of the template choice, grouping and pairing.
    constants
        Values for placeholders that are not obs columns (e.g. ``organism``).
    group_by, min_cells, max_cells
        Multi-cell tasks: cells are grouped by these obs columns (default: the label column)
        and cut into groups of ``min_cells`` to ``max_cells`` cells.
    perturbation_key, control_value, context_keys
        Paired tasks: the obs column naming the perturbation, its value for control cells, and
        the columns a control must share with the perturbed cell.
    """

    def __init__(
        self,
        task: Task | str,
        *,
        profile: str = "compat",
        n_genes: int = 200,
        seed: int = 0,
        constants: dict | None = None,
        group_by: Sequence[str] | None = None,
        min_cells: int = 5,
        max_cells: int = 20,
        perturbation_key: str = "perturbation",
        control_value: str = "control",
        context_keys: Sequence[str] = ("cell_type",),
    ):
        self.task = get_task(task) if isinstance(task, str) else task
        self.profile = profile
        self.templates = self.task.templates_for(profile)
        if n_genes < 1:
            raise C2SError(f"n_genes must be a positive number of genes, got {n_genes}.")
        if not 1 <= min_cells <= max_cells:
            raise C2SError("Need 1 <= min_cells <= max_cells.")
        self.n_genes = n_genes
        self.seed = seed
        self.constants = dict(constants or {})
        self.group_by = list(group_by) if group_by else None
        self.min_cells, self.max_cells = min_cells, max_cells
        self.perturbation_key = perturbation_key
        self.control_value = control_value
        self.context_keys = list(context_keys)

    # -- template choice -----------------------------------------------------------------
    def _template(self, key: int) -> int:
        """Index of the template for an example, drawn with (seed, key) when there are several."""
        if len(self.templates) == 1:
            return 0
        return int(np.random.default_rng([self.seed, 1, key]).integers(len(self.templates)))

    def _values(self, obs_row: dict, n_genes: int) -> dict:
        v = {
            **{k: str(x) for k, x in obs_row.items()},
            **{k: str(x) for k, x in self.constants.items()},
        }
        v["num_genes"] = str(n_genes)
        return v

    def _fill(self, cs: CellSentences, cells: Sequence[int], t: Template, k: int) -> dict:
        """Placeholder values for ``cells`` with ``k`` genes per sentence."""
        cols = [c for c in t.fields - COMPUTED if c in cs.obs.columns]
        kind = self.task.kind
        anchor = int(cells[-1]) if kind == "pair" else int(cells[0])
        v = self._values({c: cs.obs[c].iat[anchor] for c in cols}, k)
        if kind == "single":
            v["cell_sentence"] = sentence_texts(cs, cells, k)[0]
        elif kind == "multi":
            v["num_cells"] = str(len(cells))
            v["multi_cell_sentences"] = multi_cell_text(sentence_texts(cs, cells, k))
        else:
            v["perturbation_name"] = str(cs.obs[self.perturbation_key].iat[anchor])
            v["control_cell_sentence"], v["perturbed_cell_sentence"] = sentence_texts(cs, cells, k)
        return v

    def render(
        self, cs: CellSentences, cells: Sequence[int], template: int, n_genes: int | None = None
    ) -> Example:
        """Render one example: ``cells`` (one cell, a group, or ``(control, perturbed)``) with
        template number ``template`` and ``n_genes`` genes per sentence (default: the
        renderer's). Training code calls this again with fewer genes to shorten an example."""
        k = self.n_genes if n_genes is None else n_genes
        t = self.templates[template]
        p, r = t.render(self._fill(cs, cells, t, k))
        return Example(p, r, self.task.name, tuple(int(c) for c in cells), k, template)

    def prompt(
        self,
        cs: CellSentences | None = None,
        cells: Sequence[int] = (),
        *,
        template: int = 0,
        n_genes: int | None = None,
        values: dict | None = None,
    ) -> str:
        """The prompt alone, for inference: the answer's placeholders need no value.

        ``cells`` fill the sentence placeholders (none for generation from a label); ``values``
        give or override any other placeholder (e.g. ``{"cell_type": "B cell"}``).
        """
        k = self.n_genes if n_genes is None else n_genes
        t = self.templates[template]
        v = self._fill(cs, cells, t, k) if cs is not None and len(cells) else self._values({}, k)
        v.update({key: str(x) for key, x in (values or {}).items()})
        missing = sorted(Template(t.prompt, "").fields - set(v))
        if missing:
            raise C2SError(
                f"The {self.task.name!r} prompt needs {missing}: add the obs column(s) or pass "
                "the value (e.g. organism='Homo sapiens' / --organism)."
            )
        return t.prompt.format_map(v)

    def content_free_prompt(
        self, cs: CellSentences, cells: Sequence[int], *, template: int = 0
    ) -> str:
        """The prompt for ``cells`` with every cell sentence left empty (the other
        placeholders keep the cells' values): what calibration scores labels against."""
        t = self.templates[template]
        v = self._fill(cs, cells, t, self.n_genes)
        for key in ("cell_sentence", "multi_cell_sentences", "control_cell_sentence"):
            if key in v:
                v[key] = ""
        return t.prompt.format_map(v)

    def answer(self, value: str, *, template: int = 0) -> str:
        """The response text for an answer value (e.g. a candidate label): ``"B cell."``."""
        t = self.templates[template]
        fields = Template(t.response, "").fields
        if len(fields) != 1:
            raise C2SError(f"The {self.task.name!r} answer has no single placeholder to fill.")
        return t.response.format_map({fields.pop(): value})

    # -- examples --------------------------------------------------------------------------
    def plan(
        self, cs: CellSentences, rows: Sequence[int] | None = None
    ) -> list[tuple[tuple[int, ...], int]]:
        """What :meth:`examples` renders, as ``(cells, template)`` pairs, without rendering."""
        obs = cs.obs
        _check_fields(self.task, self.profile, obs, self.constants)
        rows = np.arange(cs.n_cells) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            raise C2SError("There are no cells to build prompts from.")
        if self.task.kind == "single":
            units = [(int(i),) for i in self._need_label(obs, rows)]
            keys = [u[0] for u in units]
        elif self.task.kind == "multi":
            units = [tuple(int(x) for x in g) for g in self.groups(cs, self._need_label(obs, rows))]
            keys = list(range(len(units)))
        else:
            units = self.pairs(cs, rows)
            keys = [u[1] for u in units]
        return [(u, self._template(key)) for u, key in zip(units, keys, strict=True)]

    def examples(self, cs: CellSentences, rows: Sequence[int] | None = None) -> Iterator[Example]:
        """Rendered examples over ``rows`` (default: all cells), in a deterministic order."""
        for cells, template in self.plan(cs, rows):
            yield self.render(cs, cells, template)

    def _need_label(self, obs: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
        cols = [c for c in self.task.columns(self.profile) if c in obs.columns]
        keep = _clean_labels(obs.iloc[rows], cols)
        if len(keep) == 0:
            raise C2SError(f"No cell has a value for {cols}: nothing to build prompts from.")
        return rows[keep]

    def groups(self, cs: CellSentences, rows: np.ndarray) -> list[np.ndarray]:
        """Multi-cell groups: cells sharing ``group_by`` values, shuffled (seeded) and cut into
        runs of ``min_cells``-``max_cells`` cells; a remainder too small is left out."""
        keys = self.group_by or ([self.task.label] if self.task.label else [])
        missing = [k for k in keys if k not in cs.obs.columns]
        if missing:
            raise C2SError(f"Cannot group cells by {missing}: no such obs column.")
        rng = np.random.default_rng([self.seed, 2])
        out = []
        if keys:
            frame = cs.obs.iloc[rows][keys].astype(str)
            parts = [rows[idx] for _, idx in frame.groupby(keys, sort=True).indices.items()]
        else:
            parts = [rows]
        for part in parts:
            part = part[rng.permutation(len(part))]
            start = 0
            while len(part) - start >= self.min_cells:
                size = int(rng.integers(self.min_cells, self.max_cells + 1))
                out.append(part[start : start + size])
                start += size
        return out

    def pairs(self, cs: CellSentences, rows: np.ndarray) -> list[tuple[int, int]]:
        """(control, perturbed) row pairs: each perturbed cell with a seeded random control
        from the same context (``context_keys``)."""
        obs = cs.obs
        for k in [self.perturbation_key, *self.context_keys]:
            if k not in obs.columns:
                raise C2SError(f"Perturbation pairing needs the obs column {k!r}.")
        raw = obs[self.perturbation_key]
        pert = raw.astype(str).to_numpy()
        is_ctrl = pert == str(self.control_value)
        # a missing or blank name, or a combination with an empty part ("A+"), names nothing
        bad = [n for n in np.unique(pert) if names_no_perturbation(n)]
        unnamed = (raw.isna().to_numpy() | np.isin(pert, bad)) & ~is_ctrl
        if not is_ctrl.any():
            raise C2SError(
                f"No control cells: no cell has {self.perturbation_key} == {self.control_value!r} "
                "(set control_value / --control-value)."
            )
        ctx = obs[self.context_keys].astype(str).agg("\x1f".join, axis=1).to_numpy()
        controls: dict[str, np.ndarray] = {}
        for c in np.unique(ctx[is_ctrl]):
            controls[c] = np.flatnonzero(is_ctrl & (ctx == c))
        out, unmatched, n_unnamed = [], 0, 0
        for i in rows:
            if is_ctrl[i]:
                continue
            if unnamed[i]:
                n_unnamed += 1
                continue
            pool = controls.get(ctx[i])
            if pool is None:
                unmatched += 1
                continue
            rng = np.random.default_rng([self.seed, 3, int(i)])
            out.append((int(pool[rng.integers(len(pool))]), int(i)))
        import warnings

        if unmatched:
            warnings.warn(
                f"{unmatched} perturbed cells have no control cell in the same "
                f"{self.context_keys} and are left out.",
                stacklevel=3,
            )
        if n_unnamed:
            warnings.warn(
                f"{n_unnamed} cells have no usable {self.perturbation_key!r} (missing, blank, "
                "or a combination with an empty part such as 'A+') and are left out.",
                stacklevel=3,
            )
        return out
