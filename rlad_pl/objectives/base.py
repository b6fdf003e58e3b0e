"""The objective interface: what a method needs from a step, and its loss on a trajectory.

An objective is a small class over the pure loss functions of this package. It declares what it
reads, so the module computes nothing else (no teacher for GRPO), checks its own
hyper-parameters when it is built (a bad value is a one-line :class:`ConfigError` before any
model is loaded), and maps ``(l, trajectory)`` to ``(loss, metrics)``. Configs choose it by
``class_path``; a user's own subclass plugs in the same way (README, "Your own objective").
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from rlad_pl import checks
from rlad_pl.objectives.surrogate import truncated_is_weights
from rlad_pl.objectives.trajectory import Trajectory

Aggregation = Literal["seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"]
KLEstimator = Literal["k1", "k2", "k3"]


class Objective:
    """Base class of the training objectives.

    Class attributes (override in subclasses, or as properties when they depend on settings):
        needs_teacher: reads ``trajectory.teacher_logp`` (the module loads a teacher).
        needs_old_logp: reads ``l_old`` (the module runs a separate no-grad pass when the policy
            moves before the last minibatch is scored).
        uses_reward: the loss uses the advantages (groups need ``G >= 2``; groups without
            reward variance may be dropped).

    Args:
        aggregation: how token terms become the loss (``seq-mean-token-mean`` is the paper's).
        sum_norm_constant: the constant of ``seq-mean-token-sum-norm`` (``None`` = the rollout's
            ``max_new_tokens``).
    """

    needs_teacher: bool = False
    needs_old_logp: bool = True
    uses_reward: bool = True

    def __init__(self, aggregation: Aggregation = "seq-mean-token-mean",
                 sum_norm_constant: float | None = None) -> None:
        self.aggregation = aggregation
        self.sum_norm_constant = sum_norm_constant
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` for a bad hyper-parameter (extend in subclasses; the
        shipped classes' checks live torch-free in :mod:`rlad_pl.checks`)."""
        checks.validate_objective(self)

    def require(self, ok: bool, key: str, allowed: str) -> None:
        """One-line :class:`ConfigError` naming the key as it is written on the command line."""
        checks.require_objective(ok, key, getattr(self, key), allowed)

    def aggregation_options(self, trajectory: Trajectory) -> dict:
        """``aggregation`` and ``sum_norm_constant`` for the pure functions."""
        constant = None
        if self.aggregation == "seq-mean-token-sum-norm":
            constant = self.sum_norm_constant or trajectory.max_new_tokens
        return {"aggregation": self.aggregation, "sum_norm_constant": constant}

    def __call__(self, logp: Tensor, trajectory: Trajectory, *,
                 progress: float = 0.0) -> tuple[Tensor, dict]:
        """``(loss, metrics)`` for the student's log-probs ``logp`` (``l``, with gradient);
        ``progress`` is the fraction of training done (for annealed coefficients)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({settings})"


class ClippedObjective(Objective):
    """Base of the clipped-ratio objectives (GRPO, TRRD, KDRL): clip range and the optional
    truncated importance weight of the rollout/trainer mismatch.

    Args:
        eps_low: lower clip range, ``r >= 1 - eps_low``.
        eps_high: upper clip range, ``r <= 1 + eps_high``.
        rollout_is_cap: ``C`` of truncated importance sampling: each token's policy-gradient
            term is weighted by ``min(exp(l_old - l_rollout), C)`` when the rollout engine
            reports its own log-probs (vLLM); ``None`` = off.
    """

    def __init__(self, eps_low: float = 0.2, eps_high: float = 0.28,
                 rollout_is_cap: float | None = None,
                 aggregation: Aggregation = "seq-mean-token-mean",
                 sum_norm_constant: float | None = None) -> None:
        self.eps_low, self.eps_high, self.rollout_is_cap = eps_low, eps_high, rollout_is_cap
        super().__init__(aggregation, sum_norm_constant)

    def validate(self) -> None:
        checks.validate_clipped(self)

    def clip_options(self, logp: Tensor, trajectory: Trajectory) -> dict:
        """Clip range, aggregation and (when on) the truncated importance weights."""
        options = {"eps_low": self.eps_low, "eps_high": self.eps_high,
                   **self.aggregation_options(trajectory)}
        if self.rollout_is_cap is not None and trajectory.rollout_logp is not None:
            options["is_weights"] = truncated_is_weights(
                trajectory.old_or(logp), trajectory.rollout_logp, self.rollout_is_cap)
        return options

