"""Final-answer extraction from model text or gold solutions (string scanning only)."""

from __future__ import annotations

import re

from ..tags import answer_block

SCAN_CHARS = 4096  # the "last number" and "####" rules look at the tail only
_NUMBER = re.compile(r"-?[0-9][0-9,]*(?:\.[0-9]+)?|-?\.[0-9]+")


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), nested braces matched."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0 or text[start:i].rstrip() not in ("\\boxed", "\\fbox"):
        return None
    depth = 0
    for j in range(i, min(len(text), i + SCAN_CHARS)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j].strip()
    return None


def after_hashes(text: str) -> str | None:
    """GSM8K style: what follows the last `####`, up to the end of that line."""
    i = text.rfind("####")
    if i < 0:
        return None
    return text[i + 4:].split("\n", 1)[0].strip()[:SCAN_CHARS] or None


def last_number(text: str) -> str | None:
    """The last number in the tail of the text (commas kept: '1,234')."""
    found = _NUMBER.findall(text[-SCAN_CHARS:])
    return found[-1].rstrip(",") if found else None


def extract_answer(text: str) -> str | None:
    """The final answer of a text: `\\boxed{}` (inside the answer block if there is one), else the
    `<answer>` block, else `#### n`, else the last number; None when nothing is found."""
    if not isinstance(text, str) or not text:
        return None
    block = answer_block(text)
    if block is not None:
        return last_boxed(block) or block
    return last_boxed(text) or after_hashes(text) or last_number(text)
