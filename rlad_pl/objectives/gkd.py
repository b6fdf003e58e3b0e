"""GKD baseline (docs/method.md, "Baselines"): on-policy distillation.

    loss = aggregate(k(l, l_T))

the reverse-KL estimate to the teacher on the student's own samples; the task reward does not
enter the loss (it is still logged).
"""

from __future__ import annotations

from torch import Tensor

from rlad_pl.checks import validate_gkd
from rlad_pl.objectives.base import Aggregation, KLEstimator, Objective
from rlad_pl.objectives.kl import kl_penalty
from rlad_pl.objectives.trajectory import Trajectory


class GKD(Objective):
    """On-policy reverse-KL distillation to the teacher; no reward, no ratio.

    Args:
        estimator: reverse-KL estimator (``k1``, ``k2``, ``k3``).
        aggregation, sum_norm_constant: as :class:`~rlad_pl.objectives.base.Objective`.
    """

    needs_teacher = True
    needs_old_logp = False
    uses_reward = False

    def __init__(self, estimator: KLEstimator = "k2",
                 aggregation: Aggregation = "seq-mean-token-mean",
                 sum_norm_constant: float | None = None) -> None:
        self.estimator = estimator
        super().__init__(aggregation, sum_norm_constant)

    def validate(self) -> None:
        validate_gkd(self)

    def __call__(self, logp: Tensor, trajectory: Trajectory, *,
                 progress: float = 0.0) -> tuple[Tensor, dict]:
        loss = kl_penalty(logp, trajectory.teacher_logp, trajectory.mask,
                          estimator=self.estimator, **self.aggregation_options(trajectory))
        return loss, {"gkd/kl_teacher": loss.detach()}
