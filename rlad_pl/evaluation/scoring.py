"""Generate completions for task records and score them: the evaluation every caller shares
(the SFT module, the offline-distillation sampler, the benchmarks)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rlad_pl.evaluation.metrics import mixed_outcomes, problem_metrics, summarize
from rlad_pl.rollout.sampling import sample_completions


def score_records(task, model, tokenizer, records: Sequence[dict], *, batch_size: int = 256,
                  **sample_kwargs) -> list[list[dict]]:
    """Per record, the task's score dicts of its sampled completions (with the text added);
    `sample_kwargs` go to `rlad_pl.rollout.sampling.sample_completions`."""
    n = sample_kwargs.get("num_samples", 1)
    scores = []
    for start in range(0, len(records), batch_size):
        batch = records[start:start + batch_size]
        texts = sample_completions(model, tokenizer, [task.prompt(r) for r in batch],
                                   **sample_kwargs)
        for i, record in enumerate(batch):
            rows = texts[i * n:(i + 1) * n]
            scores.append([{**task.score(t, record), "text": t} for t in rows])
    return scores


def score_tensors(task, scores: list[list[dict]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(correct, malformed) as bool[records, samples] from `score_records`' output."""
    correct = torch.tensor([[bool(s["correct"]) for s in row] for row in scores], dtype=torch.bool)
    malformed = torch.tensor([[bool(task.malformed(s)) for s in row] for row in scores],
                             dtype=torch.bool)
    return correct.view(len(scores), -1), malformed.view(len(scores), -1)


def subset_metrics(task, greedy: list[list[dict]] | None = None,
                   sampled: list[list[dict]] | None = None,
                   pass_k: Sequence[int] | None = None) -> dict[str, float]:
    """Family values (`rlad_pl.evaluation.metrics`) of one subset from its score dicts: one
    greedy and / or n sampled per record; each the mean of the per-problem values."""
    inputs = {}
    if greedy is not None:
        correct, malformed = score_tensors(task, greedy)
        inputs.update(greedy_correct=correct[:, 0], greedy_malformed=malformed[:, 0])
    if sampled is not None:
        inputs["sampled_correct"], inputs["sampled_malformed"] = score_tensors(task, sampled)
    return {family: float(values.double().mean())
            for family, values in problem_metrics(**inputs, pass_k=pass_k).items()}


def score_split(task, model, tokenizer, split: dict[str, list[dict]], *, greedy: bool = True,
                num_samples: int = 0, temperature: float = 1.0, top_p: float = 1.0,
                max_new_tokens: int = 400, seed: int | None = None,
                batch_size: int = 256) -> dict[str, tuple[list | None, list | None]]:
    """Per subset of `split` (subset -> records), the `score_records` output of its greedy
    completions and of `num_samples` sampled ones (None where not asked for). With `seed`, the
    global torch RNG is seeded with it before each subset's sampling."""
    scored = {}
    for subset, records in split.items():
        greedy_scores = score_records(task, model, tokenizer, records, batch_size=batch_size,
                                      max_new_tokens=max_new_tokens,
                                      temperature=0.0) if greedy else None
        sampled_scores = None
        if num_samples > 0:
            if seed is not None:
                torch.manual_seed(seed)
            sampled_scores = score_records(task, model, tokenizer, records,
                                           batch_size=batch_size, num_samples=num_samples,
                                           max_new_tokens=max_new_tokens,
                                           temperature=temperature, top_p=top_p)
        scored[subset] = (greedy_scores, sampled_scores)
    return scored


def summarize_split(task, scored: dict[str, tuple[list | None, list | None]],
                    pass_k: Sequence[int] | None = None) -> dict[str, float]:
    """The tags of `rlad_pl.evaluation.metrics.summarize` (``accuracy/<subset>``,
    ``accuracy/mean``, ``mean@<n>``, ``pass@<k>``, ``malformed...``) of `score_split`'s output."""
    return summarize({subset: subset_metrics(task, greedy, sampled, pass_k)
                      for subset, (greedy, sampled) in scored.items()}, list(scored))


def problem_outcomes(task, scored: dict[str, tuple[list | None, list | None]]) -> dict:
    """Per subset, each problem's greedy correctness (0/1) and number of correct samples, in
    record order: what paired comparisons of two models on the same problems need."""
    out = {}
    for subset, (greedy, sampled) in scored.items():
        out[subset] = {}
        if greedy is not None:
            out[subset]["greedy_correct"] = score_tensors(task, greedy)[0][:, 0].int().tolist()
        if sampled is not None:
            out[subset]["sampled_correct"] = score_tensors(task, sampled)[0].sum(1).tolist()
    return out


def evaluate_split(task, model, tokenizer, split: dict[str, list[dict]], *,
                   pass_k: Sequence[int] | None = None, **score_kwargs) -> dict[str, float]:
    """Greedy and / or sampled completions of every record of `split`, scored by `task` and
    summarized (`summarize_split`); `score_kwargs` go to `score_split`."""
    return summarize_split(task, score_split(task, model, tokenizer, split, **score_kwargs),
                           pass_k)


def group_signal(task, model, tokenizer, records: Sequence[dict], *, num_samples: int = 8,
                 temperature: float = 1.0, max_new_tokens: int = 400,
                 batch_size: int = 16) -> dict[str, float]:
    """How much learning signal group-relative RL would get on `records`: `num_samples` samples
    each; ``mixed@<n>`` (share of groups whose samples are not all equally correct), ``mean@<n>``
    and ``pass@<n>``."""
    n = num_samples
    scores = score_records(task, model, tokenizer, records, num_samples=n,
                           temperature=temperature, max_new_tokens=max_new_tokens,
                           batch_size=batch_size)
    metrics = subset_metrics(task, sampled=scores, pass_k=[n])
    correct, _ = score_tensors(task, scores)
    return {f"mixed@{n}": float(mixed_outcomes(correct).double().mean()),
            f"mean@{n}": metrics[f"mean@{n}"], f"pass@{n}": metrics[f"pass@{n}"]}
