"""Prompt tasks: templates (the ``compat`` formats and c2s paraphrases), rendering, parsing."""

from c2s.prompts._registry import get_task, list_tasks, register_task, task_from_template
from c2s.prompts._renderer import Renderer
from c2s.prompts._tasks import (
    Example,
    Task,
    multi_cell_text,
    names_no_perturbation,
    sentence_texts,
)
from c2s.prompts._templates import PROFILES, Template, load_profile

__all__ = [
    "PROFILES",
    "Example",
    "Renderer",
    "Task",
    "Template",
    "get_task",
    "list_tasks",
    "load_profile",
    "multi_cell_text",
    "names_no_perturbation",
    "register_task",
    "sentence_texts",
    "task_from_template",
]
