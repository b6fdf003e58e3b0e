"""The task interface: how a record becomes a prompt, and how a completion is scored."""

from __future__ import annotations

from abc import ABC, abstractmethod


class Task(ABC):
    """A verifiable task.

    `prompt(record)` is the full prompt text, ending with `prefill` (text that belongs to the
    assistant turn, e.g. "<think>", or ""). `score(completion, record)` scores what the model
    generated after the prompt; the task prepends `prefill` itself. The score dict has float
    `total`, bool `correct` and float components. `subset(record)` is the difficulty key used for
    per-subset validation.
    """

    name: str = ""
    prefill: str = ""
    #: record fields that must be present (checked by the data loader)
    required_fields: tuple[str, ...] = ()
    #: difficulty subsets the generator produces (for generated validation splits)
    subsets: tuple[str, ...] = ()
    #: formats `sft_target` renders (empty: the task has no SFT targets)
    sft_formats: tuple[str, ...] = ()

    @abstractmethod
    def prompt(self, record: dict, tokenizer=None) -> str:
        """Prompt text for a record; `tokenizer` is needed only by the "chat" template."""

    @abstractmethod
    def score(self, completion: str, record: dict) -> dict:
        """Reward of a completion (text generated after the prompt)."""

    @abstractmethod
    def subset(self, record: dict) -> str:
        """Difficulty subset of a record, e.g. "people3"."""

    def malformed(self, score: dict) -> bool:
        """Whether a completion's answer could not be read at all (its `score` dict); the
        default: a negative `format` component (a score without one is never malformed)."""
        return float(score.get("format", 0.0)) < 0

    def sft_target(self, record: dict, fmt: str) -> str:
        """The completion a model should write after `prompt(record)` (without EOS), rendered
        in format `fmt` (one of `sft_formats`). Tasks without SFT targets raise."""
        raise NotImplementedError(f"task {self.name!r} has no SFT targets")

    def normalize(self, record: dict) -> dict:
        """Map a raw file record to the task's canonical fields (identity by default)."""
        return record

    def validate(self, record: dict) -> None:
        """Raise ValueError when a record cannot be used (missing fields, bad content)."""
        missing = [k for k in self.required_fields if k not in record]
        if missing:
            raise ValueError(f"missing field(s) {', '.join(missing)}")

    def generate(self, count: int, *, seed: int | str, subset: str | None = None,
                 exclude=None) -> list[dict]:
        """`count` synthetic records (of one subset if given), none equal to one in `exclude`;
        deterministic for `seed`. Tasks without a generator raise."""
        raise NotImplementedError(f"task {self.name!r} has no generator")

    def subset_from_filename(self, filename: str) -> str | None:
        """Subset implied by a data file name (e.g. people3_num100.jsonl), if any."""
        return None
