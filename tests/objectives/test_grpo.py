"""grpo_loss: hand-computed values, every aggregation with its own constant."""

import math

import pytest
import torch

from rlad_pl.objectives import GRPO, Trajectory, grpo_loss
from tests.objectives.helpers import (
    AGGS,
    INF,
    POLICY_KEYS,
    grad_of,
    ref_policy_loss,
    t,
)


def test_grpo_hand_computed():
    # r = 1.5 (clipped at 1 + 0.28 for A > 0), r = 0.5 (unclipped): s = 1.28 and 0.5.
    l = t([[math.log(1.5), math.log(0.5), -INF]]).requires_grad_(True)
    l_old = t([[0.0, 0.0, -INF]])
    mask = torch.tensor([[1, 1, 0]])
    loss, m = grpo_loss(l, l_old, t([1.0]), mask)
    assert loss.item() == pytest.approx(-(1.28 + 0.5) / 2)
    assert torch.allclose(grad_of(loss, l), t([[0.0, -0.5 / 2, 0.0]]))
    assert set(m) == POLICY_KEYS
    assert [m[k].item() for k in ("ratio/mean", "ratio/min", "ratio/max")] == pytest.approx(
        [1, 0.5, 1.5]
    )
    assert m["clip/frac_high"].item() == 0.5 and m["clip/frac_low"].item() == 0
    assert m["clip/frac_pos_adv"].item() == 0.5 and m["clip/frac_neg_adv"].item() == 0


def test_grpo_negative_advantage_per_token():
    # A < 0: r = 0.5 is clipped at 0.8 (s = -0.8, no gradient); r = 1.5 is not (s = -1.5).
    l = t([[math.log(0.5), math.log(1.5)]]).requires_grad_(True)
    loss, m = grpo_loss(l, t([[0.0, 0.0]]), t([[-1.0, -1.0]]), torch.ones(1, 2))
    assert loss.item() == pytest.approx((0.8 + 1.5) / 2)
    assert torch.allclose(grad_of(loss, l), t([[0.0, 1.5 / 2]]))
    assert m["clip/frac_low"].item() == 0.5 and m["clip/frac_neg_adv"].item() == 0.5


# Three completions of 3, 1 and 2 real tokens in a padded width of 4 (plus padding garbage).
# Ratios cover every branch: unclipped, clipped above (A > 0), clipped below (A < 0).
L = [[-1.0, -0.4, -2.0, -INF], [-0.7, -INF, -INF, -INF], [-1.5, -0.2, -INF, -INF]]
L_OLD = [[-1.1, -0.9, -1.8, -INF], [-0.5, -INF, -INF, -INF], [-1.0, -0.25, -INF, -INF]]
MASK = [[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0]]
ADV = [0.7, -1.3, -0.4]
EPS = (0.15, 0.35)


def _reference(aggregation, C, adv=ADV, eps=EPS):
    log_r = [
        [a - b if m else 0.0 for a, b, m in zip(*rows, strict=True)]
        for rows in zip(L, L_OLD, MASK, strict=False)
    ]
    A = [[a] * 4 for a in adv]
    ones = [[1.0] * 4 for _ in MASK]
    return ref_policy_loss(log_r, ones, A, MASK, aggregation, C, *eps)


@pytest.mark.parametrize("aggregation", AGGS)
@pytest.mark.parametrize("C", [None, 3, 9.5])
def test_grpo_every_aggregation_and_constant(aggregation, C):
    l = t(L).requires_grad_(True)
    loss, _ = grpo_loss(
        l,
        t(L_OLD),
        t(ADV),
        torch.tensor(MASK),
        eps_low=EPS[0],
        eps_high=EPS[1],
        aggregation=aggregation,
        sum_norm_constant=C,
    )
    expected, expected_grad = _reference(aggregation, C)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert torch.allclose(grad_of(loss, l), t(expected_grad), rtol=1e-12, atol=1e-15)


def test_grpo_sum_norm_constant_changes_the_value():
    # the constant must reach the aggregation: C = 9.5 vs the padded width 4
    args = (t(L), t(L_OLD), t(ADV), torch.tensor(MASK))
    kw = {"aggregation": "seq-mean-token-sum-norm"}
    wide, _ = grpo_loss(*args, sum_norm_constant=9.5, **kw)
    default, _ = grpo_loss(*args, **kw)
    assert wide.item() == pytest.approx(default.item() * 4 / 9.5, rel=1e-12)


def test_grpo_default_arguments():
    # defaults: eps_low 0.2, eps_high 0.28, seq-mean-token-mean
    l = t(L).requires_grad_(True)
    loss, _ = grpo_loss(l, t(L_OLD), t(ADV), torch.tensor(MASK))
    expected, expected_grad = _reference("seq-mean-token-mean", None, eps=(0.2, 0.28))
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert torch.allclose(grad_of(loss, l), t(expected_grad), rtol=1e-12, atol=1e-15)


def test_grpo_per_token_advantages_match_broadcast():
    A_tok = t([[a] * 4 for a in ADV])
    a, _ = grpo_loss(t(L), t(L_OLD), t(ADV), torch.tensor(MASK), aggregation="token-mean")
    b, _ = grpo_loss(t(L), t(L_OLD), A_tok, torch.tensor(MASK), aggregation="token-mean")
    assert torch.equal(a, b)


def test_grpo_loss_dtype_follows_the_log_probs():
    l = t(L).float()
    loss, _ = grpo_loss(l, t(L_OLD).float(), t(ADV), torch.tensor(MASK))
    assert loss.dtype == torch.float32


def _trajectory(**kw):
    return Trajectory(mask=torch.tensor(MASK), advantages=t(ADV), old_logp=t(L_OLD),
                      max_new_tokens=6, **kw)


@pytest.mark.parametrize("aggregation", AGGS)
def test_grpo_class_is_the_function(aggregation):
    l = t(L).requires_grad_(True)
    loss, m = GRPO(eps_low=EPS[0], eps_high=EPS[1], aggregation=aggregation)(l, _trajectory())
    C = 6 if aggregation.endswith("norm") else None  # the rollout's max_new_tokens
    expected, expected_grad = _reference(aggregation, C)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert torch.allclose(grad_of(loss, l), t(expected_grad), rtol=1e-12, atol=1e-15)
    want, want_m = grpo_loss(t(L), t(L_OLD), t(ADV), torch.tensor(MASK), eps_low=EPS[0],
                             eps_high=EPS[1], aggregation=aggregation, sum_norm_constant=C)
    assert torch.equal(loss.detach(), want) and m.keys() == want_m.keys()


def test_grpo_class_without_old_logp_uses_l_detached():
    # first update of a rollout: l_old = l, r = 1, gradient A * w per token
    l = t(L).requires_grad_(True)
    traj = Trajectory(mask=torch.tensor(MASK), advantages=t(ADV))
    loss, m = GRPO()(l, traj)
    assert loss.item() == pytest.approx(-(0.7 - 1.3 - 0.4) / 3, rel=1e-12)
    assert m["ratio/mean"].item() == 1.0
    g = grad_of(loss, l)
    assert g[0, 0].item() == pytest.approx(-0.7 / 3 / 3)
    assert g[1, 0].item() == pytest.approx(1.3 / 3)


def test_grpo_truncated_importance_weights_scale_each_token():
    # w = min(exp(l_old - l_rollout), C) multiplies s per token
    rollout = [[a + d for a in row] for row, d in zip(L_OLD, (0.1, -0.3, 0.05), strict=True)]
    l = t(L).requires_grad_(True)
    loss, _ = GRPO(eps_low=EPS[0], eps_high=EPS[1], rollout_is_cap=1.2)(
        l, _trajectory(rollout_logp=t(rollout)))
    w = [min(math.exp(-0.1), 1.2), min(math.exp(0.3), 1.2), min(math.exp(-0.05), 1.2)]
    log_r = [[a - b if m else 0.0 for a, b, m in zip(*rows, strict=True)]
             for rows in zip(L, L_OLD, MASK, strict=True)]
    A = [[a * wi] * 4 for a, wi in zip(ADV, w, strict=True)]  # w A r == (w s) on these branches
    ones = [[1.0] * 4 for _ in MASK]
    # s = min(rA, clip(r)A) and w > 0, so w s = min(r wA, clip(r) wA)
    expected, expected_grad = ref_policy_loss(log_r, ones, A, MASK, "seq-mean-token-mean", None,
                                              *EPS)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert torch.allclose(grad_of(loss, l), t(expected_grad), rtol=1e-12, atol=1e-15)
