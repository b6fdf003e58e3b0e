"""Verifiable tasks: prompt rendering, answer parsing, reward. `get_task(name, **kwargs)`."""

from __future__ import annotations

from .base import Task


def get_task(name: str, **kwargs) -> Task:
    """Build a task by name: "knights_knaves" (alias "kk") or "math"."""
    if name in ("knights_knaves", "kk"):
        from .knights_knaves import KnightsKnavesTask

        return KnightsKnavesTask(**kwargs)
    if name == "math":
        from .math import MathTask

        return MathTask(**kwargs)
    raise ValueError(f"unknown task {name!r}; available: knights_knaves, math")


__all__ = ["Task", "get_task"]
