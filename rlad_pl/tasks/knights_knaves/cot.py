"""The backtracking solver trace behind the chain of thought, and its two renderings.

The trace follows the published procedure: visit people from a queue, assume knight then knave,
reject a partial assignment when an assigned person's statement (negated for a knave) cannot be
satisfied by any completion of the unassigned people, move the people mentioned in the statement
just assumed to the front of the queue, and back up when both roles fail.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from .logic import Statement, evaluate, referents
from .render import claim_text, role


@dataclass(frozen=True)
class Step:
    """One solver event. kind: "assume" (person takes role `knight`), "contradiction" (role
    `knight` for person is impossible because of `witness`'s statement), "exhausted" (both roles
    of person failed; go back to `back_to`, None at the root)."""

    kind: str
    person: int
    knight: bool | None = None
    witness: int | None = None
    back_to: int | None = None


def _satisfiable(stmt: Statement, want: bool, assign: dict[int, bool]) -> bool:
    free = [p for p in referents(stmt) if p not in assign]
    n = max([*assign, *referents(stmt)]) + 1
    for values in itertools.product((True, False), repeat=len(free)):
        full = [False] * n
        for p, v in assign.items():
            full[p] = v
        for p, v in zip(free, values, strict=False):
            full[p] = v
        if evaluate(stmt, full) == want:
            return True
    return False


def _conflict(statements: Sequence[Statement], assign: dict[int, bool]) -> int | None:
    """First assigned person (in assignment order) whose statement cannot get the needed truth."""
    for p, knight in assign.items():
        if not _satisfiable(statements[p], knight, assign):
            return p
    return None


def backtrack_trace(statements: Sequence[Statement], n_people: int) -> tuple[list[Step], dict]:
    """Run the backtracking solver; return its steps and the final assignment {person: knight}."""
    steps: list[Step] = []
    assign: dict[int, bool] = {}
    stack: list[int] = []

    def visit(queue: list[int]) -> bool:
        if not queue:
            return True
        person, rest = queue[0], queue[1:]
        for knight in (True, False):
            assign[person] = knight
            witness = _conflict(statements, assign)
            if witness is None:
                steps.append(Step("assume", person, knight))
                front = [p for p in referents(statements[person]) if p in rest]
                stack.append(person)
                if visit(front + [p for p in rest if p not in front]):
                    return True
                stack.pop()
            else:
                steps.append(Step("contradiction", person, knight, witness=witness))
            del assign[person]
        steps.append(Step("exhausted", person, back_to=stack[-1] if stack else None))
        return False

    visit(list(range(n_people)))
    return steps, dict(assign)


COT_HEAD = ("Let us reason step by step: give one person a role at a time and check whether "
            "it contradicts anyone's statement.")
COT_FOOT = "Every statement is consistent with these roles, so this is the solution."


def verbose_step(step: Step, statements: Sequence[Statement], names: Sequence[str]) -> str:
    """One step in the published verbose style (our own wording)."""
    who = names[step.person]
    if step.kind == "assume":
        return f"Assume {who} is a {role(step.knight)}."
    if step.kind == "contradiction":
        claim = claim_text(statements[step.witness], names)
        claim = claim[0].lower() + claim[1:] if claim.startswith("If ") else claim
        owner = "their own statement" if step.witness == step.person else \
            f"the statement of {names[step.witness]}"
        return f"{who} cannot be a {role(step.knight)}, because this would contradict {owner} " \
               f"that {claim}."
    back = "" if step.back_to is None else \
        f", so let us go back and reconsider {names[step.back_to]}"
    return f"We have exhausted all possibilities for {who}{back}."


def verbose_cot(statements: Sequence[Statement], names: Sequence[str]) -> tuple[str, list[str], str]:
    """(cot_head, cot_repeat_steps, cot_foot) for a record."""
    steps, _ = backtrack_trace(statements, len(names))
    return COT_HEAD, [verbose_step(s, statements, names) for s in steps], COT_FOOT


def compact_cot(statements: Sequence[Statement], names: Sequence[str]) -> str:
    """Whitespace-separated trace for tiny models: 'Zoey knight Liam knight x Liam knave ...'.

    `NAME knight|knave` is an assumption that holds so far, a following `x` marks it as
    contradicted, and `back NAME` returns to NAME after both roles of a person failed.
    """
    words: list[str] = []
    for step in backtrack_trace(statements, len(names))[0]:
        if step.kind == "assume":
            words += [names[step.person], role(step.knight)]
        elif step.kind == "contradiction":
            words += [names[step.person], role(step.knight), "x"]
        elif step.back_to is not None:
            words += ["back", names[step.back_to]]
    return " ".join(words)


def full_cot(record: dict) -> str:
    """The published-style chain of thought of a record: head, numbered steps, foot."""
    steps = " ".join(f"({i + 1}) {s}" for i, s in enumerate(record["cot_repeat_steps"]))
    return f"{record['cot_head']} {steps} {record['cot_foot']}"
