"""KDRL baseline (specs/method.md, "KDRL"): GRPO plus a reverse-KL term toward the teacher.

    loss = GRPO loss + kd_coef * aggregate(k(l, l_T))

``kd_coef`` is ``lambda_kd`` (annealing it is the caller's job). ``kd_mask`` restricts the KD
term, e.g. to completions that are not already correct (KDRL's reward-guided masking).
"""

from __future__ import annotations

from torch import Tensor

from rlad_pl.objectives.grpo import grpo_loss
from rlad_pl.objectives.kl import kl_penalty


def kdrl_loss(
    logp: Tensor,
    old_logp: Tensor,
    teacher_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    kd_coef: float,
    estimator: str = "k2",
    eps_low: float = 0.2,
    eps_high: float = 0.28,
    aggregation: str = "seq-mean-token-mean",
    sum_norm_constant: float | None = None,
    kd_mask: Tensor | None = None,
) -> tuple[Tensor, dict]:
    """KDRL loss; metrics are GRPO's plus ``kdrl/kd_term`` (the aggregated KL estimate)."""
    loss, metrics = grpo_loss(
        logp,
        old_logp,
        advantages,
        mask,
        eps_low=eps_low,
        eps_high=eps_high,
        aggregation=aggregation,
        sum_norm_constant=sum_norm_constant,
    )
    kd_term = kl_penalty(
        logp,
        teacher_logp,
        mask if kd_mask is None else kd_mask.bool() & mask.bool(),
        estimator=estimator,
        aggregation=aggregation,
        sum_norm_constant=sum_norm_constant,
    )
    metrics["kdrl/kd_term"] = kd_term.detach()
    return loss + kd_coef * kd_term, metrics
