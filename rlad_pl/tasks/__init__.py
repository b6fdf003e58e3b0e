"""Verifiable tasks: prompt rendering, answer parsing, reward. `get_task(name, **kwargs)`."""

from __future__ import annotations

from .base import Task

#: other names of the tasks (a task's ``name`` is the canonical one)
TASK_ALIASES = {"kk": "knights_knaves"}


def get_task(name: str, **kwargs) -> Task:
    """Build a task by name: "knights_knaves" (alias "kk") or "math"."""
    name = TASK_ALIASES.get(name, name)
    if name == "knights_knaves":
        from .knights_knaves import KnightsKnavesTask

        return KnightsKnavesTask(**kwargs)
    if name == "math":
        from .math import MathTask

        return MathTask(**kwargs)
    raise ValueError(f"unknown task {name!r}; available: knights_knaves, math")


__all__ = ["TASK_ALIASES", "Task", "get_task"]
