"""Trajectory: selecting rows and width, l_old fallback."""

import torch

from rlad_pl.objectives import Trajectory
from tests.objectives.helpers import t


def _trajectory(**kw):
    x = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    return Trajectory(mask=torch.ones(3, 4), advantages=t([1.0, 2.0, 3.0]), old_logp=x,
                      teacher_logp=x + 100, ref_logp=x + 200, rollout_logp=x + 300,
                      max_new_tokens=9, **kw)


def test_select_rows_and_width():
    traj = _trajectory()
    sub = traj.select(torch.tensor([2, 0]), width=3)
    assert sub.advantages.tolist() == [3.0, 1.0]
    assert sub.mask.shape == (2, 3)
    assert sub.old_logp.tolist() == [[8.0, 9.0, 10.0], [0.0, 1.0, 2.0]]
    assert sub.teacher_logp.tolist() == [[108.0, 109.0, 110.0], [100.0, 101.0, 102.0]]
    assert sub.ref_logp.tolist() == [[208.0, 209.0, 210.0], [200.0, 201.0, 202.0]]
    assert sub.rollout_logp.tolist() == [[308.0, 309.0, 310.0], [300.0, 301.0, 302.0]]
    assert sub.max_new_tokens == 9
    full = traj.select(torch.tensor([1]))
    assert full.old_logp.shape == (1, 4) and full.teacher_logp[0, 3].item() == 107.0


def test_select_keeps_missing_tensors_missing():
    traj = Trajectory(mask=torch.ones(2, 3), advantages=t([1.0, 2.0]))
    sub = traj.select(torch.tensor([1]), width=2)
    assert sub.old_logp is None and sub.teacher_logp is None and sub.ref_logp is None
    assert sub.rollout_logp is None and sub.mask.shape == (1, 2)


def test_old_or():
    logp = t([[-1.0, -2.0]]).requires_grad_(True)
    no_old = Trajectory(mask=torch.ones(1, 2), advantages=t([1.0]))
    got = no_old.old_or(logp)
    assert torch.equal(got, logp.detach()) and not got.requires_grad
    old = t([[-3.0, -4.0]])
    assert Trajectory(mask=torch.ones(1, 2), advantages=t([1.0]), old_logp=old).old_or(logp) is old
