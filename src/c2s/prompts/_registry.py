"""Registry of prompt tasks (built-in and user-defined)."""

from __future__ import annotations

from c2s._errors import C2SError
from c2s.prompts._tasks import COMPUTED, Task
from c2s.prompts._templates import PROFILES, Template

_REGISTRY: dict[str, Task] = {}


def register_task(task: Task, *, overwrite: bool = False) -> Task:
    """Add a task to the registry (``overwrite`` to replace one with the same name)."""
    if task.name in _REGISTRY and not overwrite:
        raise C2SError(f"A task named {task.name!r} exists; pass overwrite=True to replace it.")
    _REGISTRY[task.name] = task
    return task


def get_task(name: str) -> Task:
    """A registered task by name; the error lists the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise C2SError(
            f"Unknown task {name!r}; known tasks: {', '.join(sorted(_REGISTRY))}."
        ) from None


def list_tasks() -> list[str]:
    return sorted(_REGISTRY)


def task_from_template(
    name: str,
    prompt: str,
    response: str,
    *,
    kind: str = "single",
    answer: str = "label",
    label: str | None = None,
    register: bool = True,
) -> Task:
    """A task from a template string with named placeholders.

    Any obs column can be a placeholder; ``{cell_sentence}`` (single), ``{multi_cell_sentences}``
    (multi) and ``{num_genes}`` / ``{num_cells}`` are filled by c2s. The same template serves
    every profile.

    Examples
    --------
    >>> task_from_template("disease_prediction",
    ...     "Cell sentence: {cell_sentence}.\\nThe donor's disease is:", "{disease}.",
    ...     label="disease")  # doctest: +SKIP
    """
    if kind not in ("single", "multi", "pair") or answer not in ("label", "cells", "text"):
        raise C2SError("kind must be single, multi or pair; answer label, cells or text.")
    t = Template(prompt, response)
    if label is None and answer in ("label", "text"):
        obs_fields = sorted(Template(response, "").fields - COMPUTED)
        label = obs_fields[0] if obs_fields else None
    task = Task(name, kind, answer, label, dict.fromkeys(PROFILES, (t,)))  # type: ignore[arg-type]
    return register_task(task) if register else task


for _task in (
    Task("cell_type_prediction", "single", "label", "cell_type"),
    Task("cell_type_generation", "single", "cells", "cell_type"),
    Task("tissue_prediction", "multi", "label", "tissue"),
    Task("tissue_conditional_generation", "multi", "cells", "tissue"),
    Task("natural_language_interpretation", "multi", "text", "abstract"),
    Task("perturbation_prediction", "pair", "cells", None),
):
    register_task(_task)
