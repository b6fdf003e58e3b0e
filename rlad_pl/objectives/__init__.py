"""Objectives: pure tensor functions written with the symbols of docs/method.md.

``l`` = ``logp``, ``l_old`` = ``old_logp``, ``l_T`` = ``teacher_logp``, ``l_ref`` = ``ref_logp``,
``A`` = ``advantages``; all ``[B, T]`` over completion positions with ``mask`` 1 on real tokens
(``advantages`` may be ``[B]``). No Lightning, no models, no I/O.

The objective classes (:class:`TRRD`, :class:`GRPO`, :class:`KDRL`, :class:`GKD`) are thin
components over these functions that the module takes as ``objective`` (base:
:class:`Objective`); the functions stay public for direct use.
"""

from rlad_pl.objectives.advantages import group_advantages
from rlad_pl.objectives.aggregation import AGGREGATIONS, aggregate
from rlad_pl.objectives.base import ClippedObjective, Objective
from rlad_pl.objectives.gkd import GKD
from rlad_pl.objectives.grpo import GRPO, grpo_loss
from rlad_pl.objectives.kdrl import KDRL, kdrl_loss
from rlad_pl.objectives.kl import ESTIMATORS, kl_estimate, kl_penalty
from rlad_pl.objectives.logprobs import completion_logprobs, token_entropy
from rlad_pl.objectives.surrogate import clipped_surrogate, truncated_is_weights
from rlad_pl.objectives.trajectory import Trajectory
from rlad_pl.objectives.trrd import CLAMP_FORMS, TRRD, TRRD_METRICS, trrd_log_ratio, trrd_loss

__all__ = [
    "AGGREGATIONS",
    "CLAMP_FORMS",
    "ESTIMATORS",
    "GKD",
    "GRPO",
    "KDRL",
    "TRRD",
    "TRRD_METRICS",
    "ClippedObjective",
    "Objective",
    "Trajectory",
    "aggregate",
    "clipped_surrogate",
    "completion_logprobs",
    "group_advantages",
    "grpo_loss",
    "kdrl_loss",
    "kl_estimate",
    "kl_penalty",
    "token_entropy",
    "trrd_log_ratio",
    "trrd_loss",
    "truncated_is_weights",
]
