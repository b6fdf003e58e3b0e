"""The objective classes pass every setting on: sum-norm constant, IS cap and weights, progress."""

import math

import pytest
import torch

from rlad_pl.errors import ConfigError
from rlad_pl.objectives import GRPO, KDRL, TRRD, Trajectory, grpo_loss, kdrl_loss, trrd_loss
from tests.objectives.helpers import t

L = t([[-1.0, -0.5, -2.0], [-0.7, -1.2, -0.3]])
OLD = t([[-1.1, -0.6, -1.8], [-0.5, -1.0, -0.4]])
TEACHER = t([[-0.6, -1.4, -2.2], [-1.9, -0.4, -0.9]])
ROLLOUT = OLD + t([[0.3, -0.2, 0.1], [-0.4, 0.05, 0.2]])
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])
A = t([0.8, -0.6])


def traj(old=OLD, **kw):
    return Trajectory(mask=MASK, advantages=A, old_logp=old, teacher_logp=TEACHER,
                      max_new_tokens=3, **kw)


def test_settings_reach_the_base_class():
    for cls in (TRRD, KDRL, GRPO):
        o = cls(rollout_is_cap=1.5, sum_norm_constant=2.5, aggregation="seq-mean-token-sum-norm")
        assert (o.rollout_is_cap, o.sum_norm_constant) == (1.5, 2.5), cls
        assert o.aggregation_options(traj())["sum_norm_constant"] == 2.5


@pytest.mark.parametrize("old", [OLD, None])
def test_is_weights_reach_trrd_and_kdrl(old):
    # w = min(exp(l_old - l_rollout), C), l_old = l (detached) when the policy has not moved
    l_old = L if old is None else OLD
    w = torch.clamp(torch.exp(l_old - ROLLOUT), max=1.1)
    got = TRRD(rollout_is_cap=1.1)(L, traj(old, rollout_logp=ROLLOUT))[0]
    assert torch.equal(got, trrd_loss(L, l_old, TEACHER, A, MASK, is_weights=w)[0])
    assert not torch.equal(got, trrd_loss(L, l_old, TEACHER, A, MASK)[0])
    got = KDRL(kd_coef=0.1, rollout_is_cap=1.1)(L, traj(old, rollout_logp=ROLLOUT))[0]
    assert torch.equal(got, kdrl_loss(L, l_old, TEACHER, A, MASK, kd_coef=0.1, is_weights=w)[0])
    assert not torch.equal(got, kdrl_loss(L, l_old, TEACHER, A, MASK, kd_coef=0.1)[0])
    got = GRPO(rollout_is_cap=1.1)(L, traj(old, rollout_logp=ROLLOUT))[0]
    assert torch.equal(got, grpo_loss(L, l_old, A, MASK, is_weights=w)[0])


def test_is_weights_take_the_loss_dtype():
    w = torch.full((2, 3), 0.5, dtype=torch.float64)
    loss, _ = grpo_loss(L.float(), OLD.float(), A.float(), MASK, is_weights=w)
    assert loss.dtype == torch.float32
    loss, _ = trrd_loss(L.float(), OLD.float(), TEACHER.float(), A.float(), MASK, is_weights=w)
    assert loss.dtype == torch.float32


def test_kdrl_default_progress_is_the_start():
    _, m = KDRL(kd_coef=0.1, kd_coef_final=0.5)(L, traj())
    assert m["kdrl/kd_coef"].item() == pytest.approx(0.1)
    assert math.isclose(KDRL(kd_coef=0.1, kd_coef_final=0.5).coefficient(0.0), 0.1)


def test_messages_are_exact():
    with pytest.raises(ConfigError, match=r"must be one of seq-mean-token-mean, token-mean, "
                                          r"seq-mean-token-sum-norm$"):
        GRPO(aggregation="sum")
    with pytest.raises(ConfigError, match=r"must lie in \[0, 1\] \(1 = GRPO, 0 = teacher-only "
                                          r"anchor\)$"):
        TRRD(alpha=2.0)
    with pytest.raises(ValueError, match=r"^teacher_logp is required unless alpha == 1$"):
        trrd_loss(L, OLD, None, A, MASK, alpha=0.5)
