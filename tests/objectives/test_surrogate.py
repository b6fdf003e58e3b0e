"""The clipped surrogate and the ratio / clip metrics users read (asymmetric inputs)."""

import math

import pytest
import torch

from rlad_pl.objectives import clipped_surrogate, grpo_loss
from rlad_pl.objectives.surrogate import clipped, clipped_high, clipped_low, ratio_metrics
from tests.objectives.helpers import INF, NAN, grad_of, ref_surrogate, t


def test_clipped_surrogate_every_branch():
    r = [0.5, 0.9, 1.1, 1.5, 0.5, 0.9, 1.1, 1.5]
    A = [1.0] * 4 + [-2.0] * 4
    rt = t(r).requires_grad_(True)
    s = clipped_surrogate(rt, t(A), eps_low=0.2, eps_high=0.28)
    want = [ref_surrogate(a, b, 0.2, 0.28) for a, b in zip(r, A, strict=True)]
    assert s.tolist() == pytest.approx([w[0] for w in want], rel=1e-14)
    assert grad_of(s.sum(), rt).tolist() == pytest.approx([w[1] for w in want], rel=1e-14)


def test_clip_flags_respect_the_sign_of_A():
    r = t([1.5, 1.5, 0.5, 0.5, 1.5, 1.0])
    A = t([1.0, -1.0, 1.0, -1.0, 0.0, 1.0])
    assert clipped_high(r, A, eps_high=0.28).tolist() == [True, False, False, False, False, False]
    assert clipped_low(r, A, eps_low=0.2).tolist() == [False, False, False, True, False, False]
    assert clipped(r, A, eps_low=0.2, eps_high=0.28).tolist() == [
        True,
        False,
        False,
        True,
        False,
        False,
    ]
    # strict bounds: exactly at 1 + eps_high / 1 - eps_low is not clipped
    at = t([1.25, 0.75])
    assert not clipped(at, t([1.0, -1.0]), eps_low=0.25, eps_high=0.25).any()


def test_ratio_and_clip_metrics_asymmetric():
    # r per token (A):  row 0: 1.5 (+1) high-clipped, 1.5 (-1) not (A < 0 above 1 + eps_high),
    #                          0.5 (+1) not (A > 0 below 1 - eps_low), 0.5 (-1) low-clipped,
    #                          1.5 (0) not, padding
    #                   row 1: 1.1 (+1), 1.4 (+1) high-clipped, 3 padding columns
    # 7 real tokens: 4 with A > 0 (2 high-clipped), 2 with A < 0 (1 low-clipped), 1 with A = 0.
    # Padding (l = l_old = garbage) would have r = 1 and pull ratio/mean toward 1.
    rs = [[1.5, 1.5, 0.5, 0.5, 1.5, None], [1.1, 1.4, None, None, None, None]]
    A = t([[1.0, -1.0, 1.0, -1.0, 0.0, 3.0], [1.0, 1.0, -2.0, -2.0, 2.0, 2.0]])
    l = t([[math.log(r) if r else NAN for r in row] for row in rs])
    old = torch.where(torch.isnan(l), -INF, torch.zeros_like(l))
    mask = ~torch.isnan(l)
    _, m = grpo_loss(l, old, A, mask)
    real = [r for row in rs for r in row if r]
    assert m["ratio/mean"].item() == pytest.approx(sum(real) / 7, rel=1e-12)
    assert m["ratio/min"].item() == pytest.approx(0.5) and m["ratio/max"].item() == pytest.approx(
        1.5
    )
    assert m["clip/frac_high"].item() == pytest.approx(2 / 7)
    assert m["clip/frac_low"].item() == pytest.approx(1 / 7)
    assert m["clip/frac_pos_adv"].item() == pytest.approx(2 / 4)
    assert m["clip/frac_neg_adv"].item() == pytest.approx(1 / 2)


def test_ratio_min_and_max_ignore_padding():
    # every real ratio above 1 (min must not be the padding's 1) and every one below 1 (max)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    for rs in ([1.2, 1.7, 1.4], [0.6, 0.9, 0.7]):
        l = t([[math.log(rs[0]), math.log(rs[1]), NAN], [math.log(rs[2]), NAN, NAN]])
        old = torch.where(mask.bool(), 0.0, -INF).double()
        _, m = grpo_loss(l, old, t([1.0, -1.0]), mask)
        assert m["ratio/min"].item() == pytest.approx(min(rs))
        assert m["ratio/max"].item() == pytest.approx(max(rs))
        assert m["ratio/mean"].item() == pytest.approx(sum(rs) / 3)


def test_ratio_metrics_without_real_tokens():
    r = t([[2.0, 0.1]])
    m = ratio_metrics(r, t([[1.0, -1.0]]), torch.zeros(1, 2), eps_low=0.2, eps_high=0.28)
    assert m["ratio/min"].item() == 1 and m["ratio/max"].item() == 1
    assert m["ratio/mean"].item() == 0
    assert all(m[k].item() == 0 for k in m if k.startswith("clip/"))


def test_frac_by_sign_is_zero_without_such_tokens():
    _, m = grpo_loss(t([[0.5, -0.5]]), t([[0.0, 0.0]]), t([[1.0, 1.0]]), torch.ones(1, 2))
    assert m["clip/frac_neg_adv"].item() == 0 and m["clip/frac_pos_adv"].item() == 0.5


def test_low_clip_needs_a_negative_advantage():
    # A = 0 and 0 < A < 1 with r below 1 - eps_low: the lower bound does not bite (s = r A has
    # gradient A for A > 0 and none for A = 0, neither is "clipped")
    r, A = t([0.5, 0.5, 0.5]), t([0.0, 0.5, -0.5])
    assert clipped_low(r, A, eps_low=0.2).tolist() == [False, False, True]
    assert clipped_high(t([1.5, 1.5]), t([0.0, 0.5]), eps_high=0.28).tolist() == [False, True]
    _, m = grpo_loss(torch.log(r)[None], torch.zeros(1, 3, dtype=torch.float64), A[None],
                     torch.ones(1, 3))
    assert m["clip/frac_low"].item() == pytest.approx(1 / 3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_metrics_have_the_log_prob_dtype(dtype):
    l = torch.tensor([[0.4, -0.6, 0.1]], dtype=dtype)
    _, m = grpo_loss(l, torch.zeros_like(l), torch.tensor([1.0]), torch.ones(1, 3))
    assert all(v.dtype == dtype for v in m.values()), {k: v.dtype for k, v in m.items()}
    empty = ratio_metrics(torch.exp(l), torch.ones_like(l), torch.zeros(1, 3),
                          eps_low=0.2, eps_high=0.28)
    assert all(v.dtype == dtype for v in empty.values()), {k: v.dtype for k, v in empty.items()}
