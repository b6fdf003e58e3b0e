"""Objective / ClippedObjective: validation (one-line ConfigError), flags, shared options."""

import math

import pytest
import torch

from rlad_pl.errors import ConfigError
from rlad_pl.objectives import GKD, GRPO, KDRL, TRRD, ClippedObjective, Objective, Trajectory
from tests.objectives.helpers import t

KEY = "model.init_args.objective.init_args"


@pytest.mark.parametrize("build, message", [
    (lambda: GRPO(aggregation="sum"), f"{KEY}.aggregation='sum': must be one of"),
    (lambda: GKD(sum_norm_constant=0), f"{KEY}.sum_norm_constant=0: must be > 0"),
    (lambda: GRPO(sum_norm_constant=-2.0), f"{KEY}.sum_norm_constant=-2.0"),
    (lambda: GRPO(eps_low=0.0), f"{KEY}.eps_low=0.0: must lie in (0, 1)"),
    (lambda: GRPO(eps_low=1.0), f"{KEY}.eps_low=1.0"),
    (lambda: TRRD(eps_high=0.0), f"{KEY}.eps_high=0.0: must be > 0"),
    (lambda: KDRL(rollout_is_cap=0.0), f"{KEY}.rollout_is_cap=0.0: must be > 0"),
    (lambda: TRRD(alpha=1.01), f"{KEY}.alpha=1.01: must lie in [0, 1]"),
    (lambda: TRRD(alpha=-0.01), f"{KEY}.alpha=-0.01"),
    (lambda: TRRD(teacher_clip=0.0), f"{KEY}.teacher_clip=0.0: must be > 0"),
    (lambda: TRRD(clamp_form="both"), f"{KEY}.clamp_form='both': must be one of ratio, anchor"),
    (lambda: KDRL(kd_coef=-1e-3), f"{KEY}.kd_coef=-0.001: must be >= 0"),
    (lambda: KDRL(kd_coef_final=-1.0), f"{KEY}.kd_coef_final=-1.0: must be >= 0"),
    (lambda: KDRL(estimator="k4"), f"{KEY}.estimator='k4': must be one of k1, k2, k3"),
    (lambda: GKD(estimator="k0"), f"{KEY}.estimator='k0': must be one of k1, k2, k3"),
])
def test_bad_settings_raise_one_line_config_error(build, message):
    with pytest.raises(ConfigError) as err:
        build()
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.parametrize("build", [
    lambda: GRPO(eps_low=0.999, eps_high=1e-9, sum_norm_constant=1e-9),
    lambda: TRRD(alpha=0.0, teacher_clip=None, clamp_form="anchor"),
    lambda: TRRD(alpha=1.0, teacher_clip=1e-9, rollout_is_cap=1e-9),
    lambda: KDRL(kd_coef=0.0, kd_coef_final=0.0, estimator="k3"),
    lambda: GKD(estimator="k1", aggregation="token-mean"),
])
def test_edge_settings_are_legal(build):
    assert isinstance(build(), Objective)


def test_flags():
    assert (GRPO.needs_teacher, GRPO.needs_old_logp, GRPO.uses_reward) == (False, True, True)
    assert (KDRL.needs_teacher, KDRL.needs_old_logp, KDRL.uses_reward) == (True, True, True)
    assert (GKD.needs_teacher, GKD.needs_old_logp, GKD.uses_reward) == (True, False, False)
    assert TRRD(alpha=0.99).needs_teacher and not TRRD(alpha=1.0).needs_teacher
    assert TRRD().needs_old_logp and TRRD().uses_reward
    assert issubclass(TRRD, ClippedObjective) and not issubclass(GKD, ClippedObjective)


def test_defaults():
    o = TRRD()
    assert (o.alpha, o.teacher_clip, o.clamp_form) == (0.5, 1.0, "ratio")
    assert (o.eps_low, o.eps_high, o.rollout_is_cap) == (0.2, 0.28, None)
    assert (o.aggregation, o.sum_norm_constant) == ("seq-mean-token-mean", None)
    k = KDRL()
    assert (k.kd_coef, k.kd_coef_final, k.estimator) == (5e-3, None, "k2")
    assert (k.eps_low, k.eps_high) == (0.2, 0.28)
    assert GKD().estimator == "k2" and GKD().aggregation == "seq-mean-token-mean"
    g = GRPO()
    assert (g.eps_low, g.eps_high, g.rollout_is_cap, g.aggregation) == (
        0.2, 0.28, None, "seq-mean-token-mean")


def test_base_call_is_abstract_and_repr_names_settings():
    with pytest.raises(NotImplementedError):
        Objective()(t([[0.0]]), Trajectory(mask=torch.ones(1, 1), advantages=t([1.0])))
    assert repr(GRPO(eps_low=0.1)).startswith("GRPO(eps_low=0.1, eps_high=0.28")


def test_aggregation_options():
    traj = Trajectory(mask=torch.ones(1, 2), advantages=t([1.0]), max_new_tokens=17)
    assert GRPO().aggregation_options(traj) == {
        "aggregation": "seq-mean-token-mean", "sum_norm_constant": None}
    # sum-norm: the objective's own constant, else the rollout's generation budget
    assert GRPO(aggregation="seq-mean-token-sum-norm").aggregation_options(traj) == {
        "aggregation": "seq-mean-token-sum-norm", "sum_norm_constant": 17}
    assert GKD(aggregation="seq-mean-token-sum-norm", sum_norm_constant=4.5).aggregation_options(
        traj)["sum_norm_constant"] == 4.5
    # a constant set for another aggregation is not passed on
    assert GRPO(aggregation="token-mean", sum_norm_constant=4.5).aggregation_options(traj)[
        "sum_norm_constant"] is None


def test_clip_options_and_truncated_is_weights():
    logp = t([[-1.0, -2.0]])
    old, rollout = t([[-1.0, -1.5]]), t([[-1.5, -1.0]])
    traj = Trajectory(mask=torch.ones(1, 2), advantages=t([1.0]), old_logp=old,
                      rollout_logp=rollout, max_new_tokens=3)
    off = GRPO(eps_low=0.1, eps_high=0.3).clip_options(logp, traj)
    assert off == {"eps_low": 0.1, "eps_high": 0.3, "aggregation": "seq-mean-token-mean",
                   "sum_norm_constant": None}
    on = GRPO(rollout_is_cap=1.2).clip_options(logp, traj)
    # w = min(exp(l_old - l_rollout), C): exp(0.5) = 1.65 -> 1.2, exp(-0.5) = 0.61
    assert on["is_weights"][0].tolist() == pytest.approx([1.2, math.exp(-0.5)])
    # without the engine's log-probs there is nothing to correct
    no_rollout = Trajectory(mask=torch.ones(1, 2), advantages=t([1.0]), old_logp=old)
    assert "is_weights" not in GRPO(rollout_is_cap=1.2).clip_options(logp, no_rollout)
    # l_old missing (policy not moved): the weights use l detached
    no_old = Trajectory(mask=torch.ones(1, 2), advantages=t([1.0]), rollout_logp=rollout)
    w = GRPO(rollout_is_cap=10.0).clip_options(logp.requires_grad_(True), no_old)["is_weights"]
    assert w[0].tolist() == pytest.approx([math.exp(0.5), math.exp(-1.0)])
    assert not w.requires_grad
