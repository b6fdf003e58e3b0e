"""The math task: prompt templates, normalisation of GSM8K/MATH-style records, reward."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ...errors import ConfigError
from ..base import Task
from ..tags import answer_block, format_ok
from ..templates import apply_template
from .extract import last_boxed
from .synthetic import generate_problems
from .targets import FORMATS, math_target
from .verify import DEFAULT_TIMEOUT, check, start_in_background

INSTRUCTION = ("Think step by step inside <think> </think>, then write only the final answer "
               "inside <answer> </answer>.")
BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
ANSWER_FORMATS = ("tags", "boxed")


def _final_response(text: str) -> str:
    i = text.rfind("</think>")
    return text[i + len("</think>"):] if i >= 0 else text


class MathTask(Task):
    """Math word problems with a verifiable final answer.

    Prompt templates (`template`): "compact" (default, tiny models): `"{question} <think>"`, e.g.
    `3 + 10 * 6 = ? <think>`, and the model writes ` 10 * 6 = 60 , 3 + 60 = 63 </think> <answer>
    63 </answer>` then EOS; "chat" (tokenizer chat template over question + instruction); or a
    format string with `{question}` / `{instruction}`, followed by the prefill "<think>".

    Answer formats (`answer_format`): "tags" (default, the embedded models): `answer` 1 when
    `<think></think><answer></answer>` appear once each in order and the answer block equals the
    gold answer, else 0; `format` +format_weight when the tags hold, else -format_weight.
    "boxed" (real instruction models, e.g. Qwen3 through `template: chat`): the final answer is
    the last `\\boxed{}` of the response after `</think>` (else "the answer is ...", the last
    `$...$`, the last number); `format` is +format_weight when the response has a `\\boxed{}`,
    else -format_weight. `enable_thinking` (None: not passed, True, False) is the chat
    template's variable of that name (Qwen3: False renders an empty think block, so the model
    answers directly); it needs `template: chat`.
    `total` = answer + format; `verifier_timeouts` is 1.0 when the answer check hit the
    verifier's wall-clock limit (`timeout` seconds; the answer then counts as wrong), so the
    module's `train/reward/verifier_timeouts` is the fraction of such completions in a step.
    Records: `question`, `answer` (gold final answer), `subset`; `normalize` maps GSM8K
    (`question`, `answer` with `#### n`) and MATH (`problem`, `solution` with `\\boxed{}`, `level`).
    """

    name = "math"
    required_fields = ("question", "answer")
    sft_formats = FORMATS

    def __init__(self, template: str = "compact", prefill: str = "<think>",
                 format_weight: float = 0.1, ops: Sequence[int] = (1, 2, 3),
                 answer_format: str = "tags", enable_thinking: bool | None = None,
                 instruction: str | None = None, timeout: float = DEFAULT_TIMEOUT):
        if answer_format not in ANSWER_FORMATS:
            raise ConfigError(f"answer_format: {answer_format!r} is not allowed; use one of "
                             f"{', '.join(ANSWER_FORMATS)}")
        if not timeout > 0:
            raise ConfigError(f"timeout: {timeout!r} is not allowed; use seconds > 0")
        if enable_thinking is not None and template != "chat":
            raise ConfigError(f"enable_thinking: {enable_thinking!r} needs template: chat, not "
                              f"{template!r}; leave it null for other templates")
        self.answer_format = answer_format
        self.chat_template_kwargs = ({} if enable_thinking is None
                                     else {"enable_thinking": bool(enable_thinking)})
        self.instruction = instruction or (INSTRUCTION if answer_format == "tags"
                                           else BOXED_INSTRUCTION)
        self.timeout = float(timeout)
        start_in_background()
        self.template = template
        self.prefill = prefill
        self.format_weight = format_weight
        self.ops = tuple(ops)
        self.subsets = tuple(f"ops{k}" for k in self.ops)

    def prompt(self, record: dict, tokenizer=None) -> str:
        question = record["question"]
        return apply_template(self.template, compact=question,
                              fields={"question": question, "instruction": self.instruction},
                              user_text=f"{question}\n\n{self.instruction}",
                              prefill=self.prefill, tokenizer=tokenizer,
                              chat_template_kwargs=self.chat_template_kwargs)

    def score(self, completion: str, record: dict) -> dict:
        text = self.prefill + completion
        if self.answer_format == "tags":
            ok = format_ok(text)
            verdict = check(answer_block(text) or "", record["answer"],
                            timeout=self.timeout) if ok else None
        else:
            ok = last_boxed(_final_response(text)) is not None
            verdict = check(text, record["answer"], timeout=self.timeout)
        correct = verdict is not None and verdict.correct
        fmt = self.format_weight if ok else -self.format_weight
        answer = 1.0 if correct else 0.0
        timed_out = 1.0 if verdict is not None and verdict.timed_out else 0.0
        return {"format": fmt, "answer": answer, "total": answer + fmt, "correct": correct,
                "verifier_timeouts": timed_out}

    def subset(self, record: dict) -> str:
        return str(record.get("subset") or "all")

    def sft_target(self, record: dict, fmt: str) -> str:
        """`math_target`: the generator's steps (format `steps`) or nothing, then the answer."""
        return math_target(record, fmt)

    def normalize(self, record: dict) -> dict:
        """Canonical `question`/`answer`/`subset` from GSM8K-, MATH-, MATH-500-, AIME- or
        AMC-style fields (see `rlad_pl.tasks.math.benchmarks.normalize_record`)."""
        from .benchmarks import normalize_record  # (not at import: the module is also a CLI)

        return normalize_record(record)

    def validate(self, record: dict) -> None:
        super().validate(record)
        for key in self.required_fields:
            if not isinstance(record[key], str) or not record[key].strip():
                raise ValueError(f"{key} must be a non-empty string")

    def generate(self, count: int, *, seed: int | str, subset: str | None = None,
                 exclude: Iterable | None = None) -> list[dict]:
        ops = (int(subset.removeprefix("ops")),) if subset else self.ops
        return generate_problems(count, seed=seed, ops=ops, exclude=exclude)

