"""KDRL baseline (docs/method.md, "KDRL"): GRPO plus a reverse-KL term toward the teacher.

    loss = GRPO loss + kd_coef * aggregate(k(l, l_T))

``kd_coef`` is ``lambda_kd`` (annealing it is the caller's job). ``kd_mask`` restricts the KD
term, e.g. to completions that are not already correct (KDRL's reward-guided masking).
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlad_pl.checks import validate_kdrl
from rlad_pl.objectives.base import Aggregation, ClippedObjective, KLEstimator
from rlad_pl.objectives.grpo import grpo_loss
from rlad_pl.objectives.kl import kl_penalty
from rlad_pl.objectives.trajectory import Trajectory


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
    is_weights: Tensor | None = None,
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
        is_weights=is_weights,
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


class KDRL(ClippedObjective):
    """KDRL: GRPO plus ``lambda_kd`` times a reverse-KL estimate to the teacher.

    Args:
        kd_coef: ``lambda_kd`` at the start of training.
        kd_coef_final: ``lambda_kd`` at the end (linear in the training progress); ``None`` =
            constant.
        estimator: reverse-KL estimator (``k1``, ``k2``, ``k3``).
        eps_low, eps_high, rollout_is_cap, aggregation, sum_norm_constant: as
            :class:`~rlad_pl.objectives.base.ClippedObjective`.
    """

    needs_teacher = True

    def __init__(self, kd_coef: float = 5e-3, kd_coef_final: float | None = None,
                 estimator: KLEstimator = "k2", eps_low: float = 0.2, eps_high: float = 0.28,
                 rollout_is_cap: float | None = None,
                 aggregation: Aggregation = "seq-mean-token-mean",
                 sum_norm_constant: float | None = None) -> None:
        self.kd_coef, self.kd_coef_final, self.estimator = kd_coef, kd_coef_final, estimator
        super().__init__(eps_low, eps_high, rollout_is_cap, aggregation, sum_norm_constant)

    def validate(self) -> None:
        validate_kdrl(self)

    def coefficient(self, progress: float) -> float:
        """``lambda_kd`` after ``progress`` (0..1) of training."""
        if self.kd_coef_final is None:
            return self.kd_coef
        return self.kd_coef + (self.kd_coef_final - self.kd_coef) * min(1.0, progress)

    def __call__(self, logp: Tensor, trajectory: Trajectory, *,
                 progress: float = 0.0) -> tuple[Tensor, dict]:
        kd_coef = self.coefficient(progress)
        loss, metrics = kdrl_loss(logp, trajectory.old_or(logp), trajectory.teacher_logp,
                                  trajectory.advantages, trajectory.mask, kd_coef=kd_coef,
                                  estimator=self.estimator, **self.clip_options(logp, trajectory))
        metrics["kdrl/kd_coef"] = torch.tensor(kd_coef)
        return loss, metrics
