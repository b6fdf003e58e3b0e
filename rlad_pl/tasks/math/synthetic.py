"""Synthetic arithmetic and word problems small enough for a tiny model to learn on CPU.

Every record has `question`, `answer` (an integer as text), `subset` ("ops1".."ops3": number of
operations) and `solution` (the steps, e.g. "12 + 7 = 19 , 19 - 3 = 16"). Text is
whitespace-separated so a word-level tokenizer covers it.
"""

from __future__ import annotations

import logging
import random

PEOPLE = ("Ann", "Ben", "Cara", "Dan", "Eve", "Finn", "Gina", "Hugo", "Ivy", "Jon")
ITEMS = ("apples", "books", "coins", "pens", "cards", "shells", "stamps", "marbles")
MAX_VALUE = 999
log = logging.getLogger(__name__)
_APPLY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def _operand(op: str, rng: random.Random) -> int:
    return rng.randint(2, 9) if op == "*" else rng.randint(1, 20)


def _arithmetic(n_ops: int, rng: random.Random) -> tuple[str, list[str], int] | None:
    """An expression with usual precedence (`*` first, then left to right), its steps, value."""
    ops = [rng.choice("+-*") for _ in range(n_ops)]
    nums = [rng.randint(1, 20)] + [_operand(op, rng) for op in ops]
    question = " ".join([str(nums[0])] + [f"{op} {x}" for op, x in zip(ops, nums[1:], strict=True)])
    steps = []
    while "*" in ops:  # fold multiplications left to right
        k = ops.index("*")
        value = nums[k] * nums[k + 1]
        if value > MAX_VALUE:
            return None
        steps.append(f"{nums[k]} * {nums[k + 1]} = {value}")
        nums[k:k + 2], ops[k:k + 1] = [value], []
    value = nums[0]
    for op, x in zip(ops, nums[1:], strict=True):
        new = _APPLY[op](value, x)
        steps.append(f"{value} {op} {x} = {new}")
        value = new
        if not 0 <= value <= MAX_VALUE:
            return None
    return question + " = ?", steps, value


_EVENTS = {"+": "{who} gets {x} more", "-": "{who} gives away {x}",
           "*": "the number of {item} grows {x} times"}


def _word(n_ops: int, rng: random.Random) -> tuple[str, list[str], int] | None:
    """A story evaluated left to right: start with x items, then n_ops events."""
    who, item = rng.choice(PEOPLE), rng.choice(ITEMS)
    value = rng.randint(1, 20)
    sentences, steps = [f"{who} has {value} {item} ."], []
    for _ in range(n_ops):
        op = rng.choice("+-*")
        x = rng.randint(2, 4) if op == "*" else rng.randint(1, 20)
        new = _APPLY[op](value, x)
        if not 0 <= new <= MAX_VALUE:
            return None
        sentences.append("Then " + _EVENTS[op].format(who=who, x=x, item=item) + " .")
        steps.append(f"{value} {op} {x} = {new}")
        value = new
    sentences.append(f"How many {item} does {who} have ?")
    return " ".join(sentences), steps, value


def generate_problems(count: int, *, seed: int | str, ops: tuple[int, ...] = (1, 2, 3),
                      kinds: tuple[str, ...] = ("arithmetic", "word"),
                      exclude=None) -> list[dict]:
    """`count` distinct problems, spread evenly over `ops` and interleaved, deterministic for
    `seed`; questions in `exclude` (strings or records) are never produced."""
    rng = random.Random(f"math-{seed}")
    seen = {x["question"] if isinstance(x, dict) else x for x in exclude or ()}
    makers = {"arithmetic": _arithmetic, "word": _word}
    records: list[dict] = []
    stale = 0
    while len(records) < count and stale < 10_000:
        n_ops = ops[len(records) % len(ops)]
        made = makers[rng.choice(kinds)](n_ops, rng)
        stale += 1
        if made is None or made[0] in seen:
            continue
        question, steps, value = made
        seen.add(question)
        stale = 0
        records.append({"question": question, "answer": str(value), "subset": f"ops{n_ops}",
                        "solution": " , ".join(steps)})
    if len(records) < count:
        log.warning("math: only %d distinct problems found (asked for %d)", len(records), count)
    return records
