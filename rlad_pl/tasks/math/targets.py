"""Targets for the embedded math models: the generator's step list, then the answer.

` 14 * 6 = 84 , 7 + 84 = 91 </think> <answer> 91 </answer>` (format `steps`), or the answer
alone (format `answer`).
"""

from __future__ import annotations

FORMATS = ("steps", "answer")


def math_target(record: dict, fmt: str = "steps") -> str:
    """Completion after the compact math prompt (which ends in `<think>`), without EOS."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown math target format {fmt!r}; one of {FORMATS}")
    thought = f" {record['solution']}" if fmt == "steps" and record.get("solution") else ""
    return f"{thought} </think> <answer> {record['answer']} </answer>"
