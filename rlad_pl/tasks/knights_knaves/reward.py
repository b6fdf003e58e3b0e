"""The Logic-RL reward for Knights and Knaves.

Format (+1 / -1): `<think>`, `</think>`, `<answer>`, `</answer>` each occur exactly once, in that
order. Answer (+2 / -1.5 / -2): the content of the answer block must contain exactly n occurrences
of "knight"/"knave" (case-insensitive, substrings count) and, for every name, a whole-word,
case-insensitive match of `NAME is a knight|knave` (any whitespace between the words); +2 when all
roles equal the solution, -1.5 when any differs (no partial credit), -2 when unparseable or when
the format fails. Totals: +3, -0.5, -1, -3.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..tags import answer_block, format_ok

FORMAT_OK, FORMAT_BAD = 1.0, -1.0
ANSWER_RIGHT, ANSWER_WRONG, ANSWER_UNPARSED = 2.0, -1.5, -2.0


def parse_roles(answer: str, names: Sequence[str]) -> list[bool] | None:
    """Roles (True = knight) per name from an answer text, or None when it does not parse."""
    lowered = answer.lower()
    if lowered.count("knight") + lowered.count("knave") != len(names):
        return None
    roles = []
    for name in names:
        pattern = r"\b" + re.escape(name) + r"\b\s+is\s+a\s+(knight|knave)\b"
        match = re.search(pattern, answer, re.IGNORECASE)
        if match is None:
            return None
        roles.append(match.group(1).lower() == "knight")
    return roles


def score(text: str, record: dict) -> dict:
    """Logic-RL reward of an assistant turn `text` (starting at its opening `<think>`).

    Returns floats `format`, `answer`, `total` and bool `correct` (all roles right, format ok).
    """
    fmt_ok = format_ok(text)
    answer = ANSWER_UNPARSED
    if fmt_ok:
        content = answer_block(text)
        roles = parse_roles(content, record["names"]) if content else None
        if roles is not None:
            gold = [bool(x) for x in record["solution"]]
            answer = ANSWER_RIGHT if roles == gold else ANSWER_WRONG
    fmt = FORMAT_OK if fmt_ok else FORMAT_BAD
    return {"format": fmt, "answer": answer, "total": fmt + answer,
            "correct": answer == ANSWER_RIGHT}
