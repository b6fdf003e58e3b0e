"""Evaluation metrics without generation: per-problem values and the tag scheme.

Metric families (per problem, then averaged over the problems of a subset):

- ``accuracy``: the greedy completion is correct;
- ``malformed``: the greedy completion's answer could not be read (`Task.malformed`);
- ``mean@<n>``: the share of ``n`` sampled completions that are correct;
- ``pass@<k>``: unbiased pass@k from the ``n`` samples (``k <= n``);
- ``malformed@<n>``: the share of the ``n`` samples whose answer could not be read.

Tags (`summarize`, without the ``val/`` / ``test/`` stage prefix): ``<family>/<subset>`` per
subset; the mean over subsets (the paper's "Avg") is ``<family>/mean`` for the greedy families
(``accuracy/mean``, ``malformed/mean``) and ``<family>`` for the sampled ones (``mean@4``,
``pass@4``, ``malformed@4``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

GREEDY_FAMILIES = ("accuracy", "malformed")


def pass_at_k(n: int, c: torch.Tensor, k: int) -> torch.Tensor:
    """Unbiased ``pass@k = 1 - C(n - c, k) / C(n, k)`` per problem, ``n`` samples, ``c`` correct."""
    values = [1.0 - math.comb(n - int(ci), k) / math.comb(n, k) for ci in c.tolist()]
    return torch.tensor(values, dtype=torch.float32, device=c.device)


def valid_ks(n: int, pass_k: Sequence[int] | None) -> list[int]:
    """The ``k`` of ``pass@k`` that ``n`` samples allow (``pass_k`` None: ``[n]``)."""
    return [k for k in (pass_k or [n]) if 1 <= k <= n]


def families(greedy: bool, num_samples: int, pass_k: Sequence[int] | None = None) -> list[str]:
    """The metric families an evaluation with these settings computes."""
    out = list(GREEDY_FAMILIES) if greedy else []
    if num_samples > 0:
        n = num_samples
        out += [f"mean@{n}", *(f"pass@{k}" for k in valid_ks(n, pass_k)), f"malformed@{n}"]
    return out


def problem_metrics(greedy_correct: torch.Tensor | None = None,
                    sampled_correct: torch.Tensor | None = None, *,
                    greedy_malformed: torch.Tensor | None = None,
                    sampled_malformed: torch.Tensor | None = None,
                    pass_k: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
    """Per-problem float32 values of each family whose inputs are given: ``greedy_*`` are
    bool[B], ``sampled_*`` bool[B, n]."""
    out = {}
    if greedy_correct is not None:
        out["accuracy"] = greedy_correct.float()
    if greedy_malformed is not None:
        out["malformed"] = greedy_malformed.float()
    if sampled_correct is not None:
        n = sampled_correct.shape[1]
        out[f"mean@{n}"] = sampled_correct.float().mean(1)
        for k in valid_ks(n, pass_k):
            out[f"pass@{k}"] = pass_at_k(n, sampled_correct.sum(1), k)
    if sampled_malformed is not None:
        out[f"malformed@{sampled_malformed.shape[1]}"] = sampled_malformed.float().mean(1)
    return out


def mixed_outcomes(sampled_correct: torch.Tensor) -> torch.Tensor:
    """Per problem (bool[B, n] in), 1.0 when its n samples are not all equally correct: the
    group would have reward variance (a learning signal) in group-relative RL."""
    counts = sampled_correct.sum(1)
    return ((counts > 0) & (counts < sampled_correct.shape[1])).float()


def mean_tag(family: str) -> str:
    """The tag of a family's mean over subsets: ``<family>/mean`` (greedy) or ``<family>``."""
    return f"{family}/mean" if family in GREEDY_FAMILIES else family


def summarize(per_subset: dict[str, dict[str, float]],
              subsets: Iterable[str] | None = None) -> dict[str, float]:
    """Tags of per-subset family values (``per_subset[subset][family]``) and their mean over the
    subsets that have the family, in the order of `subsets` (default: `per_subset`'s)."""
    order = list(subsets if subsets is not None else per_subset)
    values = {f"{family}/{subset}": value for subset in order
              for family, value in per_subset.get(subset, {}).items()}
    for family in sorted({f for subset in order for f in per_subset.get(subset, {})}):
        present = [per_subset[s][family] for s in order if family in per_subset.get(s, {})]
        values[mean_tag(family)] = sum(present) / len(present)
    return values


def headline(values: dict[str, float]) -> dict[str, float]:
    """The means over subsets among `summarize`'s tags (what a one-line summary shows)."""
    return {k: v for k, v in values.items() if k.endswith("/mean") or "/" not in k}
