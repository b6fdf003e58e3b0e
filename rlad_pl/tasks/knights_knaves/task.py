"""The Knights-and-Knaves task: prompt templates, reward, subsets, record validation."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ..base import Task
from ..templates import apply_template
from .generator import generate_puzzles
from .logic import parse_statements, unique_solution
from .render import compact_quiz
from .reward import ANSWER_UNPARSED, score
from .targets import FORMATS, kk_target

INSTRUCTION = ("Think step by step inside <think> </think>, then give the role of every "
               "inhabitant inside <answer> </answer>, one per line, written as "
               "'NAME is a knight' or 'NAME is a knave'.")
_PEOPLE_IN_NAME = re.compile(r"people(\d+)")


class KnightsKnavesTask(Task):
    """Knights and Knaves with the Logic-RL reward.

    Prompt templates (`template`):

    - "compact" (default, for the embedded tiny models; stable, the tiny models are trained on
      it): the statements in a short whitespace-separated form, then " ?", then " <think>", e.g.
      `Zoey : Liam knave iff Ava knave . Liam : not Zoey knight . Ava : Zoey knight . ? <think>`
      (leaf `NAME knight|knave`; `not X`, `X and Y`, `X or Y`, `if X then Y`, `X iff Y`).
      The model then writes ` ... </think> <answer> Zoey is a knave . ... </answer>` and EOS.
    - "chat": the tokenizer's chat template over the quiz plus an instruction, then "<think>".
    - any other string is a format string with `{quiz}`, `{n}`, `{names}`, `{instruction}`
      placeholders, followed by the prefill "<think>".

    `people`: levels used by `generate` (synthetic records when no files are given).
    """

    name = "knights_knaves"
    required_fields = ("names", "solution", "statements")
    sft_formats = FORMATS

    def __init__(self, template: str = "compact", prefill: str = "<think>",
                 people: Sequence[int] = (2, 3, 4, 5, 6, 7, 8)):
        self.template = template
        self.prefill = prefill
        self.people = tuple(people)
        self.subsets = tuple(f"people{n}" for n in self.people)

    def prompt(self, record: dict, tokenizer=None) -> str:
        if self.template == "compact":
            statements = parse_statements(record["statements"], len(record["names"]))
            return apply_template("compact", compact=compact_quiz(statements, record["names"]),
                                  fields={}, user_text="", prefill=self.prefill)
        quiz = record.get("quiz")
        if not quiz:
            raise ValueError(f"template {self.template!r} needs the record's quiz text")
        fields = {"quiz": quiz, "n": len(record["names"]), "names": ", ".join(record["names"]),
                  "instruction": INSTRUCTION}
        return apply_template(self.template, compact="", fields=fields,
                              user_text=f"{quiz}\n\n{INSTRUCTION}", prefill=self.prefill,
                              tokenizer=tokenizer)

    def score(self, completion: str, record: dict) -> dict:
        return score(self.prefill + completion, record)

    def subset(self, record: dict) -> str:
        return f"people{len(record['names'])}"

    def malformed(self, score: dict) -> bool:
        """The answer could not be read: format broken or roles unparseable (the Logic-RL
        answer score ANSWER_UNPARSED)."""
        return score.get("answer") == ANSWER_UNPARSED

    def sft_target(self, record: dict, fmt: str) -> str:
        """`kk_target`: the trace of format `fmt` (see `targets.FORMATS`), then the answer."""
        return kk_target(record, fmt)

    def subset_from_filename(self, filename: str) -> str | None:
        match = _PEOPLE_IN_NAME.search(filename)
        return f"people{int(match.group(1))}" if match else None

    def validate(self, record: dict) -> None:
        """Fields present, statements parse, names distinct and in the quiz, solution unique."""
        super().validate(record)
        names, solution = record["names"], record["solution"]
        if not isinstance(names, list) or not all(isinstance(x, str) and x for x in names):
            raise ValueError("names must be a list of non-empty strings")
        if len(set(names)) != len(names):
            raise ValueError("names are not distinct")
        if not isinstance(solution, list) or len(solution) != len(names) or \
                not all(isinstance(x, bool) for x in solution):
            raise ValueError("solution must be a list of booleans, one per name")
        statements = parse_statements(record["statements"], len(names))
        quiz = record.get("quiz")
        if quiz is not None:
            absent = [x for x in names if not re.search(r"\b" + re.escape(x) + r"\b", quiz)]
            if absent:
                raise ValueError(f"names not in quiz: {', '.join(absent)}")
        if unique_solution(statements, len(names)) != tuple(solution):
            raise ValueError("solution is not the unique consistent assignment")

    def generate(self, count: int, *, seed: int | str, subset: str | None = None,
                 exclude: Iterable | None = None) -> list[dict]:
        """`count` records spread evenly over `self.people` (or only the level of `subset`),
        interleaved level by level."""
        levels = [int(subset.removeprefix("people"))] if subset else list(self.people)
        exclude = list(exclude or ())
        per_level = [generate_puzzles(n, count // len(levels) + (i < count % len(levels)),
                                      seed=seed, exclude=exclude)
                     for i, n in enumerate(levels)]
        out = []
        for i in range(max(map(len, per_level), default=0)):
            out += [recs[i] for recs in per_level if i < len(recs)]
        return out
