"""TRRD / RLAD, the method (docs/method.md, "TRRD / RLAD"): the teacher enters the ratio.

    log r = alpha * (l - l_old) + (1 - alpha) * clamp(l - l_T, -c, c)
    s     = min(r * A, clip(r, 1 - eps_low, 1 + eps_high) * A)
    loss  = -aggregate(s)

Without the clamp, ``r = pi_S / anchor`` with ``log anchor = alpha * l_old + (1 - alpha) * l_T``.
``clamp_form="anchor"`` is the spec's alternative: the teacher's offset from ``l_old`` is clamped
inside the (constant) anchor, ``log anchor = l_old + (1 - alpha) * clamp(l_T - l_old, -c, c)``,
so ``d log r / d l`` stays 1. ``alpha = 1`` is GRPO exactly; the teacher then does not enter
the loss (it may be ``None``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from rlad_pl.checks import CLAMP_FORMS, trrd_needs_teacher, validate_trrd
from rlad_pl.objectives.base import Aggregation, ClippedObjective
from rlad_pl.objectives.surrogate import clipped, policy_loss
from rlad_pl.objectives.tokens import masked_mean, on_tokens, token_advantages
from rlad_pl.objectives.trajectory import Trajectory

TRRD_METRICS = (
    "trrd/log_ratio_teacher_mean",
    "trrd/log_ratio_teacher_abs_mean",
    "trrd/clamp_active_frac",
    "trrd/anchor_stopped_frac",
    "trrd/anchor_widened_frac",
)


def _clamp(x: Tensor, c: float | None) -> Tensor:
    return x if c is None else x.clamp(-c, c)


def trrd_log_ratio(
    l: Tensor,
    l_old: Tensor,
    l_T: Tensor,
    *,
    alpha: float,
    c: float | None,
    clamp_form: str = "ratio",
) -> Tensor:
    """``log r_TRRD`` per token; ``c=None`` turns the clamp off."""
    if clamp_form == "ratio":
        return alpha * (l - l_old) + (1 - alpha) * _clamp(l - l_T, c)
    if clamp_form == "anchor":
        log_anchor = l_old + (1 - alpha) * _clamp(l_T - l_old, c)
        return l - log_anchor
    raise ValueError(f"unknown clamp_form {clamp_form!r}; expected one of {CLAMP_FORMS}")


def clamp_active(
    l: Tensor, l_old: Tensor, l_T: Tensor, *, c: float | None, clamp_form: str = "ratio"
) -> Tensor:
    """Tokens where the clamp bites: ``|l - l_T| > c`` (``|l_T - l_old| > c`` for ``"anchor"``)."""
    if c is None:
        return torch.zeros_like(l, dtype=torch.bool)
    return ((l - l_T) if clamp_form == "ratio" else (l_T - l_old)).abs() > c


def trrd_loss(
    logp: Tensor,
    old_logp: Tensor,
    teacher_logp: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    *,
    alpha: float = 0.5,
    eps_low: float = 0.2,
    eps_high: float = 0.28,
    teacher_clip: float | None = 1.0,
    aggregation: str = "seq-mean-token-mean",
    clamp_form: str = "ratio",
    sum_norm_constant: float | None = None,
    is_weights: Tensor | None = None,
) -> tuple[Tensor, dict]:
    """TRRD loss and its metrics.

    ``logp`` (``l``), ``old_logp`` (``l_old``), ``teacher_logp`` (``l_T``; may be ``None`` when
    ``alpha == 1``) and ``mask`` are ``[B, T]``; ``advantages`` (``A``) is ``[B]`` or ``[B, T]``.
    ``teacher_clip`` is ``c`` (``None``: no clamp); ``is_weights`` optional per-token truncated
    importance weights of the rollout/trainer mismatch.
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    mask = mask.bool()
    l, l_old = on_tokens(logp, mask), on_tokens(old_logp, mask)
    l_T = None if teacher_logp is None else on_tokens(teacher_logp, mask)
    A = token_advantages(advantages, mask, l.dtype)
    if alpha == 1:  # exactly GRPO (spec property 4): the teacher does not enter the loss
        log_r = l - l_old
    elif l_T is None:
        raise ValueError("teacher_logp is required unless alpha == 1")
    else:
        log_r = trrd_log_ratio(l, l_old, l_T, alpha=alpha, c=teacher_clip, clamp_form=clamp_form)
    loss, r, metrics = policy_loss(
        log_r,
        A,
        mask,
        eps_low=eps_low,
        eps_high=eps_high,
        aggregation=aggregation,
        sum_norm_constant=sum_norm_constant,
        is_weights=is_weights,
    )
    if l_T is None:
        metrics.update(dict.fromkeys(TRRD_METRICS, torch.zeros((), dtype=l.dtype, device=l.device)))
    else:
        metrics.update(
            _teacher_metrics(
                l.detach(),
                l_old,
                l_T,
                r.detach(),
                A,
                mask,
                eps_low=eps_low,
                eps_high=eps_high,
                c=teacher_clip if alpha < 1 else None,
                clamp_form=clamp_form,
            )
        )
    return loss, metrics


@torch.no_grad()
def _teacher_metrics(l, l_old, l_T, r, A, mask, *, eps_low, eps_high, c, clamp_form) -> dict:
    """Student-teacher log-ratio, clamp activity, and what the anchor changed versus GRPO.

    ``anchor_stopped``: clipped under TRRD but not under GRPO at the same point
    (``r_grpo = exp(l - l_old)``); ``anchor_widened``: the reverse. Fractions of real tokens.
    """
    under_trrd = clipped(r, A, eps_low=eps_low, eps_high=eps_high)
    under_grpo = clipped(torch.exp(l - l_old), A, eps_low=eps_low, eps_high=eps_high)
    active = clamp_active(l, l_old, l_T, c=c, clamp_form=clamp_form)
    log_ratio_teacher = l - l_T
    return {
        "trrd/log_ratio_teacher_mean": masked_mean(log_ratio_teacher, mask),
        "trrd/log_ratio_teacher_abs_mean": masked_mean(log_ratio_teacher.abs(), mask),
        "trrd/clamp_active_frac": masked_mean(active.to(l.dtype), mask),
        "trrd/anchor_stopped_frac": masked_mean((under_trrd & ~under_grpo).to(l.dtype), mask),
        "trrd/anchor_widened_frac": masked_mean((under_grpo & ~under_trrd).to(l.dtype), mask),
    }


class TRRD(ClippedObjective):
    """RLAD's objective: the teacher enters the trust-region ratio (equations above).

    Args:
        alpha: mixing weight between ``pi_old`` (1) and the teacher (0); 1 is GRPO exactly and
            loads no teacher.
        teacher_clip: ``c``, clamp of the student-teacher log-ratio; ``None`` = no clamp.
        clamp_form: ``ratio`` (the paper: clamp inside the ratio) or ``anchor`` (clamp the
            teacher's offset inside the constant anchor, so ``d log r / d l`` stays 1).
        eps_low, eps_high, rollout_is_cap, aggregation, sum_norm_constant: as
            :class:`~rlad_pl.objectives.base.ClippedObjective`.
    """

    def __init__(self, alpha: float = 0.5, teacher_clip: float | None = 1.0,
                 clamp_form: Literal["ratio", "anchor"] = "ratio", eps_low: float = 0.2,
                 eps_high: float = 0.28, rollout_is_cap: float | None = None,
                 aggregation: Aggregation = "seq-mean-token-mean",
                 sum_norm_constant: float | None = None) -> None:
        self.alpha, self.teacher_clip, self.clamp_form = alpha, teacher_clip, clamp_form
        super().__init__(eps_low, eps_high, rollout_is_cap, aggregation, sum_norm_constant)

    @property
    def needs_teacher(self) -> bool:
        return trrd_needs_teacher(self)

    def validate(self) -> None:
        validate_trrd(self)

    def __call__(self, logp: Tensor, trajectory: Trajectory, *,
                 progress: float = 0.0) -> tuple[Tensor, dict]:
        return trrd_loss(logp, trajectory.old_or(logp), trajectory.teacher_logp,
                         trajectory.advantages, trajectory.mask, alpha=self.alpha,
                         teacher_clip=self.teacher_clip, clamp_form=self.clamp_form,
                         **self.clip_options(logp, trajectory))
