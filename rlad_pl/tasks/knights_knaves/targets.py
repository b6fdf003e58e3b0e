"""SFT targets (`KnightsKnavesTask.sft_target`) for the embedded K&K models: a depth-first search
in which every step is local, then the answer.

People are taken in prompt order. Person k is either *derived* (every person their statement
mentions is already placed, so the statement's truth fixes k's role: `Ava T F so knave`) or
*assumed* (`Ava knight`, later `Ava knave`). After each placement the statements that just became
fully determined (speaker and everyone mentioned placed, the last of them k) are checked, each
written as its leaf truth values and a verdict: `: Liam T ok Zoey F T x`. A failed check ends the
line and the search backtracks to the most recent assumed knight. Lines end with ` .`.

Example (3 people): ` Owen knight . Emma knight : Owen T x . Emma knave : Owen F ok .
Noah T F so knight : Emma F ok .`
"""

from __future__ import annotations

from collections.abc import Sequence

from .cot import compact_cot
from .logic import evaluate, parse_statements, referents
from .render import compact_answer

FORMATS = ("dfs", "dfs_path", "dfs_explicit", "answer", "backtrack")


def _leaf_values(stmt, assignment: Sequence[bool]) -> list[str]:
    if stmt[0] == "not":
        stmt = stmt[1]
    leaves = [stmt] if stmt[0] in ("telling-truth", "lying") else list(stmt[1:])
    return ["T" if evaluate(leaf, assignment) else "F" for leaf in leaves]


def _dfs(statements: Sequence, names: Sequence[str], place, check, checks_lead: list[str]) -> str:
    """The depth-first search all trace formats share. `place(k, placed, full, derived)` and
    `check(j, full, consistent)` return the words of one placement and of one check;
    `checks_lead` is written once before a line's checks."""
    n = len(names)
    closes_at = {k: [j for j in range(n) if max([j, *referents(statements[j])]) == k]
                 for k in range(n)}
    derived = [max(referents(statements[k])) < k for k in range(n)]
    words: list[str] = []

    def visit(k: int, placed: list[bool]) -> bool:
        if k == n:
            return True
        pad = [True] * (n - k - 1)
        options = [evaluate(statements[k], placed + [True] + pad)] if derived[k] else [True, False]
        for knight in options:
            full = placed + [knight] + pad
            words.extend(place(k, placed, full, derived[k]))
            checks = [j for j in closes_at[k] if not (derived[k] and j == k)]
            consistent = True
            if checks:
                words.extend(checks_lead)
            for j in checks:
                consistent = evaluate(statements[j], full) == full[j]
                words.extend(check(j, full, consistent))
                if not consistent:
                    break
            words.append(".")
            if consistent and visit(k + 1, placed + [knight]):
                return True
        return False

    if not visit(0, []):
        raise ValueError("puzzle has no consistent assignment")
    return " ".join(words)


def _role(knight: bool) -> str:
    return "knight" if knight else "knave"


def dfs_trace(statements: Sequence, names: Sequence[str], restate_path: bool = False) -> str:
    """The local depth-first trace of a puzzle (see the module docstring). With
    `restate_path`, each line first repeats the roles placed so far (`Zoey knight Liam knave`),
    so that every role a check needs is at most one line back."""
    def place(k, placed, full, derived):
        path = [w for p, p_knight in enumerate(placed) for w in (names[p], _role(p_knight))]
        values = [*_leaf_values(statements[k], full), "so"] if derived else []
        return [*(path if restate_path else []), names[k], *values, _role(full[k])]

    def check(j, full, consistent):
        return [names[j], *_leaf_values(statements[j], full), "ok" if consistent else "x"]

    return _dfs(statements, names, place, check, checks_lead=[":"])


def _evaluation(stmt, names: Sequence[str], assignment: Sequence[bool]) -> list[str]:
    """`Liam knave T or Max knight F = T`: each leaf copied with its truth value, then the
    statement's value (omitted for a bare leaf)."""
    def leaf(x):
        return [names[x[1]], "knight" if x[0] == "telling-truth" else "knave",
                "T" if evaluate(x, assignment) else "F"]
    value = ["=", "T" if evaluate(stmt, assignment) else "F"]
    if stmt[0] in ("telling-truth", "lying"):
        return leaf(stmt)
    if stmt[0] == "not":
        return ["not", *leaf(stmt[1]), *value]
    if stmt[0] == "->":
        return ["if", *leaf(stmt[1]), "then", *leaf(stmt[2]), *value]
    op = "iff" if stmt[0] == "<=>" else stmt[0]
    return [*leaf(stmt[1]), op, *leaf(stmt[2]), *value]


def dfs_explicit_trace(statements: Sequence, names: Sequence[str]) -> str:
    """The same search with every lookup written out: roles as `Zoey = knight`, a derived role
    as `Ava : <evaluation> so Ava = knave`, a check as `Liam knight says <evaluation> ok`."""
    def place(k, placed, full, derived):
        evaluation = [names[k], ":", *_evaluation(statements[k], names, full), "so"]
        return [*(evaluation if derived else []), names[k], "=", _role(full[k])]

    def check(j, full, consistent):
        return [",", names[j], _role(full[j]), "says", *_evaluation(statements[j], names, full),
                "ok" if consistent else "x"]

    return _dfs(statements, names, place, check, checks_lead=[])


def kk_target(record: dict, fmt: str = "dfs") -> str:
    """Completion after the compact prompt (which ends in `<think>`), without EOS."""
    names = record["names"]
    statements = parse_statements(record["statements"], len(names))
    if fmt in ("dfs", "dfs_path"):
        trace = dfs_trace(statements, names, restate_path=fmt == "dfs_path")
    elif fmt == "dfs_explicit":
        trace = dfs_explicit_trace(statements, names)
    elif fmt == "backtrack":
        trace = compact_cot(statements, names)
    elif fmt == "answer":
        trace = ""
    else:
        raise ValueError(f"unknown K&K target format {fmt!r}; one of {FORMATS}")
    thought = f" {trace}" if trace else ""
    return f"{thought} </think> <answer> {compact_answer(names, record['solution'])} </answer>"
