"""The clipped surrogate shared by GRPO and TRRD (docs/method.md).

    s = min(r * A, clip(r, 1 - eps_low, 1 + eps_high) * A)

optionally weighted per token by the truncated importance weight of the rollout/trainer mismatch,
``w = min(exp(l_old - l_rollout), C)`` (a constant: it carries no gradient).

``torch.minimum`` passes the gradient to the smaller argument (half to each on a tie, where the
two are the same function of ``r``), and ``clamp`` passes none outside its bounds, so
``ds/dr = A`` on the unclipped branch and 0 on the clipped one, as the spec says.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlad_pl.objectives.aggregation import aggregate
from rlad_pl.objectives.tokens import masked_mean, on_tokens


def clipped_surrogate(r: Tensor, A: Tensor, *, eps_low: float, eps_high: float) -> Tensor:
    """Per-token ``s = min(r A, clip(r, 1 - eps_low, 1 + eps_high) A)``."""
    return torch.minimum(r * A, r.clamp(1 - eps_low, 1 + eps_high) * A)


def clipped_low(r: Tensor, A: Tensor, *, eps_low: float) -> Tensor:
    """Tokens whose gradient the lower clip bound removes: ``A < 0`` and ``r < 1 - eps_low``."""
    return (A < 0) & (r < 1 - eps_low)


def clipped_high(r: Tensor, A: Tensor, *, eps_high: float) -> Tensor:
    """Tokens whose gradient the upper clip bound removes: ``A > 0`` and ``r > 1 + eps_high``."""
    return (A > 0) & (r > 1 + eps_high)


def clipped(r: Tensor, A: Tensor, *, eps_low: float, eps_high: float) -> Tensor:
    """Tokens on the clipped branch of ``s`` (zero gradient)."""
    return clipped_low(r, A, eps_low=eps_low) | clipped_high(r, A, eps_high=eps_high)


def ratio_metrics(r: Tensor, A: Tensor, mask: Tensor, *, eps_low: float, eps_high: float) -> dict:
    """Detached ratio and clip statistics over the real tokens of ``mask``.

    ``ratio/min`` and ``ratio/max`` are 1 when there is no real token. ``clip/frac_low`` and
    ``clip/frac_high`` are fractions of all real tokens; ``clip/frac_pos_adv`` (``_neg_adv``) is
    the clipped fraction among the real tokens with ``A > 0`` (``A < 0``), 0 when there are none.
    """
    with torch.no_grad():
        mask = mask.bool()
        one = torch.ones((), dtype=r.dtype, device=r.device)
        real = r[mask]
        low = clipped_low(r, A, eps_low=eps_low)
        high = clipped_high(r, A, eps_high=eps_high)
        return {
            "ratio/mean": masked_mean(r, mask),
            "ratio/min": real.min() if real.numel() else one,
            "ratio/max": real.max() if real.numel() else one,
            "clip/frac_low": masked_mean(low.to(r.dtype), mask),
            "clip/frac_high": masked_mean(high.to(r.dtype), mask),
            "clip/frac_pos_adv": masked_mean(high.to(r.dtype), mask & (A > 0)),
            "clip/frac_neg_adv": masked_mean(low.to(r.dtype), mask & (A < 0)),
        }


def truncated_is_weights(old_logp: Tensor, rollout_logp: Tensor, cap: float) -> Tensor:
    """``w = min(exp(l_old - l_rollout), C)`` per token, without gradient: corrects for the rollout
    engine sampling from a numerically different policy than the one the trainer scores."""
    return (old_logp - rollout_logp).detach().exp().clamp(max=cap)


def policy_loss(
    log_r: Tensor,
    A: Tensor,
    mask: Tensor,
    *,
    eps_low: float,
    eps_high: float,
    aggregation: str,
    sum_norm_constant: float | None,
    is_weights: Tensor | None = None,
) -> tuple[Tensor, Tensor, dict]:
    """``(loss, r, metrics)`` with ``loss = -aggregate(w * s)`` and ``r = exp(log_r)``
    (``w = 1`` when ``is_weights`` is ``None``)."""
    r = torch.exp(log_r)
    s = clipped_surrogate(r, A, eps_low=eps_low, eps_high=eps_high)
    if is_weights is not None:
        s = s * on_tokens(is_weights.to(s.dtype), mask)
    loss = -aggregate(s, mask, aggregation, sum_norm_constant=sum_norm_constant)
    return loss, r, ratio_metrics(r.detach(), A, mask, eps_low=eps_low, eps_high=eps_high)
