"""Statements of the published logical form, their evaluation and the brute-force solver.

A statement is a nested tuple exactly as in the published `statements` field:
leaves `('telling-truth', j)` ("j is a knight") and `('lying', j)` ("j is a knave"), and the
operators `('not', s)`, `('and', s1, s2, ...)`, `('or', s1, s2, ...)`, `('->', s1, s2)`,
`('<=>', s1, s2)`. A puzzle is a tuple with one statement per person, person i says statement i.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

Statement = tuple
LEAVES = ("telling-truth", "lying")
BINARY = ("->", "<=>")
VARIADIC = ("and", "or")
MAX_PEOPLE = 16
MAX_STATEMENTS_CHARS = 100_000
MAX_DEPTH = 8


def check_statement(stmt, n_people: int | None = None, *, _depth: int = 0) -> None:
    """Raise ValueError unless `stmt` is a well-formed statement (ids < n_people when given)."""
    if _depth > MAX_DEPTH:
        raise ValueError("statement nested too deeply")
    if not isinstance(stmt, tuple) or not stmt or not isinstance(stmt[0], str):
        raise ValueError(f"not a statement tuple: {stmt!r:.80}")
    op, args = stmt[0], stmt[1:]
    if op in LEAVES:
        if len(args) != 1 or type(args[0]) is not int or args[0] < 0:
            raise ValueError(f"bad leaf: {stmt!r:.80}")
        if n_people is not None and args[0] >= n_people:
            raise ValueError(f"leaf names person {args[0]} but the puzzle has {n_people}")
        return
    arity_ok = {"not": len(args) == 1, "->": len(args) == 2, "<=>": len(args) == 2,
                "and": len(args) >= 2, "or": len(args) >= 2}
    if not arity_ok.get(op, False):
        raise ValueError(f"unknown operator or wrong arity: {stmt!r:.80}")
    for child in args:
        check_statement(child, n_people, _depth=_depth + 1)


def parse_statements(text: str, n_people: int | None = None) -> tuple[Statement, ...]:
    """Parse the published `statements` string with `ast.literal_eval` (never eval) and validate.

    Raises ValueError on anything that is not a tuple of well-formed statements (one per person
    when `n_people` is given).
    """
    if not isinstance(text, str):
        raise TypeError("statements must be a string")
    if len(text) > MAX_STATEMENTS_CHARS:
        raise ValueError("statements string too long")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as err:
        raise ValueError(f"statements is not a Python literal: {err}") from None
    if isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, tuple) or not value:
        raise ValueError("statements must be a non-empty tuple")
    if n_people is not None and len(value) != n_people:
        raise ValueError(f"{len(value)} statements for {n_people} people")
    n = len(value) if n_people is None else n_people
    if n > MAX_PEOPLE:
        raise ValueError(f"more than {MAX_PEOPLE} people")
    for stmt in value:
        check_statement(stmt, n)
    return value


def evaluate(stmt: Statement, assignment: Sequence[bool]) -> bool:
    """Truth of `stmt` under `assignment` (assignment[j] True = j is a knight)."""
    op = stmt[0]
    if op == "telling-truth":
        return bool(assignment[stmt[1]])
    if op == "lying":
        return not assignment[stmt[1]]
    if op == "not":
        return not evaluate(stmt[1], assignment)
    if op == "and":
        return all(evaluate(s, assignment) for s in stmt[1:])
    if op == "or":
        return any(evaluate(s, assignment) for s in stmt[1:])
    if op == "->":
        return (not evaluate(stmt[1], assignment)) or evaluate(stmt[2], assignment)
    if op == "<=>":
        return evaluate(stmt[1], assignment) == evaluate(stmt[2], assignment)
    raise ValueError(f"unknown operator {op!r}")


def referents(stmt: Statement) -> list[int]:
    """People a statement talks about, in order of first mention."""
    if stmt[0] in LEAVES:
        return [stmt[1]]
    out: list[int] = []
    for child in stmt[1:]:
        out += [p for p in referents(child) if p not in out]
    return out


def _truth_mask(stmt: Statement, knight: list[int], full: int) -> int:
    """Bit a of the result is the truth of `stmt` under assignment a (bit j of a = j is a knight)."""
    op = stmt[0]
    if op == "telling-truth":
        return knight[stmt[1]]
    if op == "lying":
        return full ^ knight[stmt[1]]
    masks = [_truth_mask(s, knight, full) for s in stmt[1:]]
    if op == "not":
        return full ^ masks[0]
    if op == "and":
        out = full
        for m in masks:
            out &= m
        return out
    if op == "or":
        out = 0
        for m in masks:
            out |= m
        return out
    if op == "->":
        return (full ^ masks[0]) | masks[1]
    if op == "<=>":
        return full ^ (masks[0] ^ masks[1])
    raise ValueError(f"unknown operator {op!r}")


def knight_masks(n_people: int) -> list[int]:
    """For each person j, the set (as a bit mask over the 2^n assignments) where j is a knight."""
    size = 1 << n_people
    masks = []
    for j in range(n_people):
        period = 2 << j
        mask = ((1 << (1 << j)) - 1) << (1 << j)  # one period: 2^j knaves then 2^j knights
        while period < size:
            mask |= mask << period
            period *= 2
        masks.append(mask)
    return masks


_KNIGHT_MASKS: dict[int, list[int]] = {}


def consistent_mask(statements: Sequence[Statement], n_people: int) -> int:
    """Bit mask of the consistent assignments: knights' statements true, knaves' false."""
    if n_people not in _KNIGHT_MASKS:
        _KNIGHT_MASKS[n_people] = knight_masks(n_people)
    knight = _KNIGHT_MASKS[n_people]
    full = (1 << (1 << n_people)) - 1
    ok = full
    for i, stmt in enumerate(statements):
        ok &= full ^ (knight[i] ^ _truth_mask(stmt, knight, full))
        if not ok:
            break
    return ok


def solve(statements: Sequence[Statement], n_people: int) -> list[tuple[bool, ...]]:
    """All consistent assignments (tuples of bools, True = knight), by brute force over 2^n."""
    if len(statements) != n_people:
        raise ValueError(f"{len(statements)} statements for {n_people} people")
    if not 1 <= n_people <= MAX_PEOPLE:
        raise ValueError(f"n_people must be in 1..{MAX_PEOPLE}")
    mask = consistent_mask(statements, n_people)
    return [tuple(bool(a >> j & 1) for j in range(n_people))
            for a in range(1 << n_people) if mask >> a & 1]


def unique_solution(statements: Sequence[Statement], n_people: int) -> tuple[bool, ...] | None:
    """The solution when exactly one assignment is consistent, else None."""
    mask = consistent_mask(statements, n_people)
    if mask == 0 or mask & (mask - 1):
        return None
    a = mask.bit_length() - 1
    return tuple(bool(a >> j & 1) for j in range(n_people))
