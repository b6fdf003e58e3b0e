"""The puzzle generator: published logical forms, exactly one solution, no duplicates."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable

from .cot import verbose_cot
from .logic import Statement, parse_statements, unique_solution
from .render import quiz_text, sample_names, solution_text, solution_text_format

log = logging.getLogger(__name__)

TOP_KINDS = ("leaf", "not", "and", "or", "->", "<=>")  # each with probability 1/6
MAX_STALE = 100_000  # attempts in a row without a new puzzle before the generator gives up


def sample_leaf(speaker: int, n_people: int, rng: random.Random) -> Statement:
    """Uniform kind and target over everyone, except the speaker calling themself a knave."""
    while True:
        leaf = (rng.choice(("telling-truth", "lying")), rng.randrange(n_people))
        if leaf != ("lying", speaker):
            return leaf


def sample_statement(speaker: int, n_people: int, rng: random.Random) -> Statement:
    """Depth 2, width 2: a leaf, or an operator over leaves (the two children distinct)."""
    kind = rng.choice(TOP_KINDS)
    if kind == "leaf":
        return sample_leaf(speaker, n_people, rng)
    if kind == "not":
        return ("not", sample_leaf(speaker, n_people, rng))
    while True:
        a, b = sample_leaf(speaker, n_people, rng), sample_leaf(speaker, n_people, rng)
        if a != b:
            return (kind, a, b)


def statements_key(item) -> tuple:
    """Canonical identity of a puzzle: its statements tuple (from a record, a string or a tuple)."""
    if isinstance(item, dict):
        item = item["statements"]
    if isinstance(item, str):
        item = parse_statements(item)
    return tuple(item)


def make_record(statements: tuple, solution: tuple, names: list[str], index: int,
                rng: random.Random) -> dict:
    """A record in the published schema."""
    head, steps, foot = verbose_cot(statements, names)
    return {
        "quiz": quiz_text(statements, names, rng),
        "names": list(names),
        "solution": list(solution),
        "solution_text": solution_text(names, solution),
        "solution_text_format": solution_text_format(names, solution),
        "statements": repr(statements),
        "index": index,
        "cot_head": head,
        "cot_repeat_steps": steps,
        "cot_foot": foot,
    }


def generate_puzzles(n_people: int, count: int, *, seed: int | str,
                     exclude: Iterable | None = None, max_stale: int = MAX_STALE) -> list[dict]:
    """`count` distinct puzzles with exactly one solution, deterministic for `seed`.

    `exclude`: records, statements strings or statement tuples that must not be produced (e.g. a
    test split). When the level runs out of new puzzles (n=2 has about 300), generation stops
    after `max_stale` attempts in a row without a new one, logs a warning and returns fewer.
    """
    if not 2 <= n_people <= 12:
        raise ValueError("n_people must be in 2..12")
    rng = random.Random(f"kk-{n_people}-{seed}")
    seen = {statements_key(x) for x in exclude or ()}
    records: list[dict] = []
    stale = 0
    while len(records) < count and stale < max_stale:
        stale += 1
        statements = tuple(sample_statement(i, n_people, rng) for i in range(n_people))
        if statements in seen:
            continue
        solution = unique_solution(statements, n_people)
        if solution is None:
            continue
        seen.add(statements)
        stale = 0
        names = sample_names(n_people, rng)
        records.append(make_record(statements, solution, names, len(records), rng))
    if len(records) < count:
        log.warning("knights_knaves: only %d distinct puzzles with %d people found (asked for %d)",
                    len(records), n_people, count)
    return records
