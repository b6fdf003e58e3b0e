"""A few completions with their gold answer and reward, as TensorBoard text, for training and
validation."""

from __future__ import annotations

import textwrap

from lightning.pytorch import Callback

from rlad_pl.errors import ConfigError


def gold_answer(record: dict) -> str:
    """The record's reference answer as text (math: ``answer``; K&K: each name's role)."""
    if "answer" in record:
        return str(record["answer"])
    if "names" in record and "solution" in record:
        return ", ".join(f"{name} is a {'knight' if knight else 'knave'}"
                         for name, knight in zip(record["names"], record["solution"], strict=False))
    return str(record.get("solution", "?"))


def _block(text: str) -> str:
    """Markdown code block (indented: no fence can be closed by the model's text)."""
    lines = [piece for line in str(text).splitlines() or [""]
             for piece in (textwrap.wrap(line, 110, drop_whitespace=False) or [""])]
    return "\n".join("    " + line for line in lines)


def sample_markdown(index: int, *, prompt: str, completion: str, record: dict, score: dict,
                    truncated: bool | None) -> str:
    """One sample: verdict, reward and its components, truncation, gold answer, texts."""
    components = [f"{k} {float(v):+.2f}" for k, v in score.items() if k not in ("total",
                                                                                 "correct")]
    verdict = "correct" if score.get("correct") else "wrong"
    head = f"**#{index} {verdict}, reward {float(score.get('total', 0.0)):+.2f}"
    if components:
        head += f" ({', '.join(components)})"
    if truncated:
        head += ", TRUNCATED at max_new_tokens (no EOS)"
    head += "**"
    return (f"{head}\n\ngold: `{gold_answer(record)}`\n\nprompt:\n\n{_block(prompt)}\n\n"
            f"completion:\n\n{_block(completion)}")


def _write(trainer, tag: str, text: str, step: int) -> None:
    for logger in trainer.loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_text"):
            experiment.add_text(tag, text, step)


class SampleLogger(Callback):
    """Text tags ``samples/train`` (one completion of each of the first ``count`` prompts of the
    step's rollout, from the RL module's ``last_samples``) and ``samples/val`` (greedy
    completions of the first ``count`` validation prompts of the first subset, including the
    pass before training). Each shows the gold answer, the reward and its components (K&K:
    format, answer), whether the completion was cut at ``max_new_tokens``, prompt and
    completion. Step = optimizer steps done, as the scalars.

    Args:
        every_n_steps: write ``samples/train`` every this many optimizer steps (and at
            ``trainer.max_steps``).
        validation: write ``samples/val`` at every validation.
        count: samples per write.
    """

    def __init__(self, every_n_steps: int = 50, validation: bool = True, count: int = 4) -> None:
        for key, value in (("every_n_steps", every_n_steps), ("count", count)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"SampleLogger {key}={value!r}: must be an integer >= 1")
        self.every_n_steps = every_n_steps
        self.validation = validation
        self.count = count

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        samples = getattr(pl_module, "last_samples", None)
        step = trainer.global_step
        due = step % self.every_n_steps == 0 or step == getattr(trainer, "max_steps", None)
        if not samples or not due or not trainer.is_global_zero:
            return
        parts = [sample_markdown(i + 1, prompt=s["prompt"], completion=s["completion"],
                                 record=s.get("record", {}),
                                 score=s.get("score", {"total": s["reward"],
                                                       "correct": s["correct"]}),
                                 truncated=s.get("truncated"))
                 for i, s in enumerate(samples[:self.count])]
        _write(trainer, "samples/train", "\n\n---\n\n".join(parts), trainer.global_step)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                                dataloader_idx=0) -> None:
        if (not self.validation or batch_idx != 0 or dataloader_idx != 0
                or not trainer.is_global_zero or not isinstance(outputs, dict)
                or "greedy_texts" not in outputs or getattr(pl_module, "task", None) is None):
            return
        texts, records = outputs["greedy_texts"], outputs["records"]
        truncated = outputs.get("greedy_truncated")
        prompts = batch.get("prompts") or [""] * len(texts)
        parts = []
        for i in range(min(self.count, len(texts))):
            parts.append(sample_markdown(
                i + 1, prompt=prompts[i], completion=texts[i], record=records[i],
                score=pl_module.task.score(texts[i], records[i]),
                truncated=bool(truncated[i]) if truncated is not None else None))
        if parts:
            _write(trainer, "samples/val", "\n\n---\n\n".join(parts), trainer.global_step)
