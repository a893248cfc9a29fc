"""Prompt templates: data (JSON in the package), loaded by profile."""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from functools import cache
from importlib import resources

from c2s._errors import C2SError

PROFILES = ("compat", "paraphrase")


@dataclass(frozen=True)
class Template:
    """A prompt and its response, with ``{name}`` placeholders (``str.format`` syntax)."""

    prompt: str
    response: str

    @property
    def fields(self) -> set[str]:
        """Placeholder names used in the prompt or the response."""
        out = set()
        for text in (self.prompt, self.response):
            for _, name, _, _ in string.Formatter().parse(text):
                if name:
                    out.add(name)
        return out

    def render(self, values: dict) -> tuple[str, str]:
        return self.prompt.format_map(values), self.response.format_map(values)


@cache
def load_profile(profile: str) -> dict[str, tuple[Template, ...]]:
    """Templates of a profile by task name: ``"compat"`` (the released models' formats) or
    ``"paraphrase"`` (c2s's own rewordings for training diversity)."""
    if profile not in PROFILES:
        raise C2SError(f"Unknown prompt profile {profile!r}; choose one of {list(PROFILES)}.")
    text = resources.files("c2s.prompts").joinpath("templates", f"{profile}.json").read_text()
    data = json.loads(text)
    return {
        task: tuple(Template(t["prompt"], t["response"]) for t in items)
        for task, items in data["tasks"].items()
    }
