"""KL estimators on the student's own tokens (docs/method.md, "GRPO" and "KDRL").

With ``d = l - l_other`` (``l_other`` the reference or the teacher log-prob):
``k1 = d``, ``k2 = 0.5 * d^2``, ``k3 = exp(-d) + d - 1`` (written with ``expm1`` for accuracy
near ``d = 0``; the same function as the spec's ``exp(l_ref - l) - (l_ref - l) - 1``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlad_pl.checks import ESTIMATORS
from rlad_pl.objectives.aggregation import aggregate
from rlad_pl.objectives.tokens import on_tokens


def kl_estimate(l: Tensor, l_other: Tensor, estimator: str = "k3") -> Tensor:
    """Per-token estimate of ``KL(pi_S || pi_other)`` from log-probs of sampled tokens."""
    if estimator == "k1":
        return l - l_other
    if estimator == "k2":
        return 0.5 * (l - l_other) ** 2
    if estimator == "k3":
        return torch.expm1(l_other - l) - (l_other - l)
    raise ValueError(f"unknown KL estimator {estimator!r}; expected one of {ESTIMATORS}")


def kl_penalty(
    logp: Tensor,
    ref_logp: Tensor,
    mask: Tensor,
    *,
    estimator: str = "k3",
    aggregation: str = "seq-mean-token-mean",
    sum_norm_constant: float | None = None,
) -> Tensor:
    """``aggregate(k(l, l_ref))``, a scalar; multiply by ``beta`` and add to the policy loss."""
    l, l_ref = on_tokens(logp, mask), on_tokens(ref_logp, mask)
    return aggregate(
        kl_estimate(l, l_ref, estimator), mask, aggregation, sum_norm_constant=sum_norm_constant
    )
