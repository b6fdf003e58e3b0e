"""GRPO (docs/method.md, "GRPO"): ``r = exp(l - l_old)``, ``loss = -aggregate(s)``.

The KL-to-reference term ``beta * aggregate(k3(l, l_ref))`` is added by the caller with
:func:`rlad_pl.objectives.kl_penalty` (no reference model at all when ``beta = 0``).
"""

from __future__ import annotations

from torch import Tensor

from rlad_pl.objectives.base import ClippedObjective
from rlad_pl.objectives.surrogate import policy_loss
from rlad_pl.objectives.tokens import on_tokens, token_advantages
from rlad_pl.objectives.trajectory import Trajectory


def grpo_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.28,
    aggregation: str = "seq-mean-token-mean",
    sum_norm_constant: float | None = None,
    is_weights: Tensor | None = None,
) -> tuple[Tensor, dict]:
    """GRPO clipped-surrogate loss and its metrics.

    ``logp`` (``l``, carries gradient), ``old_logp`` (``l_old``) and ``mask`` are ``[B, T]``;
    ``advantages`` (``A``) is ``[B]`` or ``[B, T]``; ``is_weights`` optional per-token
    truncated importance weights (:func:`~rlad_pl.objectives.surrogate.truncated_is_weights`).
    """
    l, l_old = on_tokens(logp, mask), on_tokens(old_logp, mask)
    A = token_advantages(advantages, mask, l.dtype)
    loss, _, metrics = policy_loss(
        l - l_old,
        A,
        mask,
        eps_low=eps_low,
        eps_high=eps_high,
        aggregation=aggregation,
        sum_norm_constant=sum_norm_constant,
        is_weights=is_weights,
    )
    return loss, metrics


class GRPO(ClippedObjective):
    """GRPO: the clipped surrogate on ``r = exp(l - l_old)``; no teacher.

    Args: as :class:`~rlad_pl.objectives.base.ClippedObjective`.
    """

    def __call__(self, logp: Tensor, trajectory: Trajectory, *,
                 progress: float = 0.0) -> tuple[Tensor, dict]:
        return grpo_loss(logp, trajectory.old_or(logp), trajectory.advantages, trajectory.mask,
                         **self.clip_options(logp, trajectory))
