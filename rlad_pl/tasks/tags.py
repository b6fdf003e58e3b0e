"""The `<think> ... </think> <answer> ... </answer>` response format shared by the tasks."""

from __future__ import annotations

TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def format_ok(text: str) -> bool:
    """Each tag exactly once, in the order <think> </think> <answer> </answer>."""
    if any(text.count(tag) != 1 for tag in TAGS):
        return False
    positions = [text.find(tag) for tag in TAGS]
    return positions == sorted(positions)


def answer_block(text: str) -> str | None:
    """Stripped content of the last `<answer>...</answer>` block, or None."""
    end = text.rfind("</answer>")
    start = text.rfind("<answer>", 0, end) if end >= 0 else -1
    return text[start + len("<answer>"):end].strip() if start >= 0 else None
