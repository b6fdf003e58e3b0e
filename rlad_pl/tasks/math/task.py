"""The math task: prompt templates, normalisation of GSM8K/MATH-style records, reward."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

from ..base import Task
from ..tags import answer_block, format_ok
from ..templates import apply_template
from .extract import after_hashes, last_boxed
from .synthetic import generate_problems
from .targets import FORMATS, math_target
from .verify import verify

INSTRUCTION = ("Think step by step inside <think> </think>, then write only the final answer "
               "inside <answer> </answer>.")
_LEVEL = re.compile(r"(\d+)")


class MathTask(Task):
    """Math word problems with a verifiable final answer.

    Prompt templates (`template`): "compact" (default, tiny models): `"{question} <think>"`, e.g.
    `3 + 10 * 6 = ? <think>`, and the model writes ` 10 * 6 = 60 , 3 + 60 = 63 </think> <answer>
    63 </answer>` then EOS; "chat" (tokenizer chat template over question + instruction); or a
    format string with `{question}` / `{instruction}`, followed by the prefill "<think>".

    Reward: `answer` 1 when the format holds and the answer block equals the gold answer
    (`verify`), else 0; `format` +format_weight when `<think></think><answer></answer>` appear
    once each in order, else -format_weight; `total` = answer + format.
    Records: `question`, `answer` (gold final answer), `subset`; `normalize` maps GSM8K
    (`question`, `answer` with `#### n`) and MATH (`problem`, `solution` with `\\boxed{}`, `level`).
    """

    name = "math"
    required_fields = ("question", "answer")
    sft_formats = FORMATS

    def __init__(self, template: str = "compact", prefill: str = "<think>",
                 format_weight: float = 0.1, ops: Sequence[int] = (1, 2, 3)):
        self.template = template
        self.prefill = prefill
        self.format_weight = format_weight
        self.ops = tuple(ops)
        self.subsets = tuple(f"ops{k}" for k in self.ops)

    def prompt(self, record: dict, tokenizer=None) -> str:
        question = record["question"]
        return apply_template(self.template, compact=question,
                              fields={"question": question, "instruction": INSTRUCTION},
                              user_text=f"{question}\n\n{INSTRUCTION}", prefill=self.prefill,
                              tokenizer=tokenizer)

    def score(self, completion: str, record: dict) -> dict:
        text = self.prefill + completion
        ok = format_ok(text)
        correct = ok and verify(answer_block(text) or "", record["answer"])
        fmt = self.format_weight if ok else -self.format_weight
        answer = 1.0 if correct else 0.0
        return {"format": fmt, "answer": answer, "total": answer + fmt, "correct": correct}

    def subset(self, record: dict) -> str:
        return str(record.get("subset") or "all")

    def sft_target(self, record: dict, fmt: str) -> str:
        """`math_target`: the generator's steps (format `steps`) or nothing, then the answer."""
        return math_target(record, fmt)

    def normalize(self, record: dict) -> dict:
        """Canonical `question`/`answer`/`subset` from GSM8K- or MATH-style fields."""
        out = dict(record)
        question = record.get("question", record.get("problem"))
        if question is not None:
            out["question"] = question
        if isinstance(record.get("answer"), (int, float)):
            out["answer"] = str(record["answer"])
        elif isinstance(record.get("answer"), str):
            out["answer"] = after_hashes(record["answer"]) or record["answer"].strip()
            if "####" in record["answer"]:
                out.setdefault("solution", record["answer"])
        elif isinstance(record.get("solution"), str):
            boxed = last_boxed(record["solution"])
            if boxed is not None:
                out["answer"] = boxed
        if "subset" not in record and isinstance(record.get("level"), str):
            level = _LEVEL.search(record["level"])
            out["subset"] = f"level{level.group(1)}" if level else "all"
        return out

    def validate(self, record: dict) -> None:
        super().validate(record)
        for key in self.required_fields:
            if not isinstance(record[key], str) or not record[key].strip():
                raise ValueError(f"{key} must be a non-empty string")

    def generate(self, count: int, *, seed: int | str, subset: str | None = None,
                 exclude: Iterable | None = None) -> list[dict]:
        ops = (int(subset.removeprefix("ops")),) if subset else self.ops
        return generate_problems(count, seed=seed, ops=ops, exclude=exclude)


def load_jsonl(path: str, task: MathTask | None = None) -> list[dict]:
    """Read a GSM8K/MATH-style JSONL file into normalised, validated records.

    Raises ValueError naming file:line for a malformed line (the DataModule instead skips or
    rejects per its `on_bad_record` setting).
    """
    task = task or MathTask()
    records = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = task.normalize(json.loads(line))
                task.validate(record)
            except (ValueError, TypeError, KeyError) as err:
                raise ValueError(f"{path}:{lineno}: {err}") from None
            records.append(record)
    return records
