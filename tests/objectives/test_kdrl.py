"""kdrl_loss = grpo_loss + kd_coef * aggregate(k(l, l_T)) under the same aggregation."""

import math

import pytest
import torch

from rlad_pl.objectives import KDRL, Trajectory, grpo_loss, kdrl_loss, kl_penalty
from tests.objectives.helpers import (
    AGGS,
    INF,
    POLICY_KEYS,
    grad_of,
    random_batch,
    ref_kl_term,
    ref_policy_loss,
    t,
)

L, L_T = t([[-1.0, -2.0]]), t([[-1.5, -1.0]])  # d = l - l_T = (0.5, -1)
KD = {
    "k1": (0.5 - 1) / 2,
    "k2": (0.125 + 0.5) / 2,
    "k3": ((math.exp(-0.5) + 0.5 - 1) + (math.exp(1) - 1 - 1)) / 2,
}


@pytest.mark.parametrize("estimator", sorted(KD))
def test_kdrl_values(estimator):
    mask = torch.ones(1, 2)
    l = L.clone().requires_grad_(True)
    grpo, _ = grpo_loss(l, L, t([0.5]), mask)
    loss, m = kdrl_loss(l, L, L_T, t([0.5]), mask, kd_coef=0.2, estimator=estimator)
    assert m["kdrl/kd_term"].item() == pytest.approx(KD[estimator], abs=1e-15)
    assert loss.item() == pytest.approx(grpo.item() + 0.2 * KD[estimator], abs=1e-15)
    # at A = 0 only the KD term moves the student: k1' = 1, k2' = d, k3' = 1 - exp(-d)
    d = torch.tensor([0.5, -1.0], dtype=torch.float64)
    dk = {"k1": torch.ones(2, dtype=torch.float64), "k2": d, "k3": 1 - torch.exp(-d)}[estimator]
    l0 = L.clone().requires_grad_(True)
    loss0, _ = kdrl_loss(l0, L, L_T, t([0.0]), mask, kd_coef=0.2, estimator=estimator)
    assert torch.allclose(grad_of(loss0, l0), 0.2 * dk[None] / 2)


def test_kdrl_default_estimator_is_k2():
    _, m = kdrl_loss(L, L, L_T, t([0.0]), torch.ones(1, 2), kd_coef=1.0)
    assert m["kdrl/kd_term"].item() == pytest.approx(KD["k2"], abs=1e-15)


def test_kdrl_kd_mask():
    mask = torch.ones(2, 2)
    l, l_T = torch.cat([L, L]), torch.cat([L_T, L_T + 1])
    _, m = kdrl_loss(
        l,
        l,
        l_T,
        t([0.0, 0.0]),
        mask,
        kd_coef=1.0,
        estimator="k1",
        kd_mask=torch.tensor([[1, 1], [0, 0]]),
    )
    assert m["kdrl/kd_term"].item() == pytest.approx(KD["k1"])


# Three completions of 3, 1 and 2 real tokens in a padded width of 4.
ROWS_L = [[-1.0, -0.4, -2.0, -INF], [-0.7, -INF, -INF, -INF], [-1.5, -0.2, -INF, -INF]]
ROWS_OLD = [[-1.1, -0.9, -1.8, -INF], [-0.5, -INF, -INF, -INF], [-1.0, -0.25, -INF, -INF]]
ROWS_T = [[-0.6, -1.4, -2.2, -INF], [-1.9, -INF, -INF, -INF], [-0.3, -0.9, -INF, -INF]]
MASK = [[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0]]
ADV = [0.7, -1.3, -0.4]
EPS = (0.15, 0.35)


def _ref_grpo(aggregation, C, mask=MASK):
    log_r = [
        [a - b if m else 0.0 for a, b, m in zip(*rows, strict=True)]
        for rows in zip(ROWS_L, ROWS_OLD, mask, strict=False)
    ]
    A = [[a] * 4 for a in ADV]
    ones = [[1.0] * 4 for _ in mask]
    return ref_policy_loss(log_r, ones, A, mask, aggregation, C, *EPS)


@pytest.mark.parametrize("estimator", ["k1", "k2", "k3"])
@pytest.mark.parametrize("aggregation", AGGS)
@pytest.mark.parametrize("C", [None, 3, 9.5])
def test_kdrl_is_grpo_plus_kd_term_under_every_aggregation(estimator, aggregation, C):
    kd_coef = 0.37
    kw = {"aggregation": aggregation, "sum_norm_constant": C, "eps_low": EPS[0], "eps_high": EPS[1]}
    mask = torch.tensor(MASK)
    l = t(ROWS_L).requires_grad_(True)
    loss, m = kdrl_loss(
        l, t(ROWS_OLD), t(ROWS_T), t(ADV), mask, kd_coef=kd_coef, estimator=estimator, **kw
    )
    # hand reference, term by term
    g_loss, g_grad = _ref_grpo(aggregation, C)
    kd, kd_grad = ref_kl_term(ROWS_L, ROWS_T, MASK, aggregation, C, estimator)
    assert m["kdrl/kd_term"].item() == pytest.approx(kd, rel=1e-12)
    assert loss.item() == pytest.approx(g_loss + kd_coef * kd, rel=1e-12)
    expected_grad = t(g_grad) + kd_coef * t(kd_grad)
    assert torch.allclose(grad_of(loss, l), expected_grad, rtol=1e-12, atol=1e-15)
    # and the same identity through the library's own pieces
    grpo, grpo_m = grpo_loss(t(ROWS_L), t(ROWS_OLD), t(ADV), mask, **kw)
    kl = kl_penalty(
        t(ROWS_L),
        t(ROWS_T),
        mask,
        estimator=estimator,
        aggregation=aggregation,
        sum_norm_constant=C,
    )
    assert loss.item() == pytest.approx((grpo + kd_coef * kl).item(), rel=1e-13)
    assert set(m) == POLICY_KEYS | {"kdrl/kd_term"}
    assert all(torch.equal(m[k], grpo_m[k]) for k in POLICY_KEYS)


@pytest.mark.parametrize("aggregation", AGGS)
def test_kdrl_kd_mask_under_every_aggregation(aggregation):
    # KD only on rows 0 and 2 (e.g. row 1 already correct): the KD term aggregates those rows only
    kd_mask = torch.tensor([[1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]])
    kd_rows = [
        [m & k for m, k in zip(a, b, strict=True)]
        for a, b in zip(MASK, kd_mask.tolist(), strict=False)
    ]
    C = 5.0
    l = t(ROWS_L).requires_grad_(True)
    loss, m = kdrl_loss(
        l,
        t(ROWS_OLD),
        t(ROWS_T),
        t(ADV),
        torch.tensor(MASK),
        kd_coef=2.0,
        estimator="k2",
        eps_low=EPS[0],
        eps_high=EPS[1],
        aggregation=aggregation,
        sum_norm_constant=C,
        kd_mask=kd_mask,
    )
    g_loss, g_grad = _ref_grpo(aggregation, C)
    kd, kd_grad = ref_kl_term(ROWS_L, ROWS_T, kd_rows, aggregation, C, "k2")
    assert m["kdrl/kd_term"].item() == pytest.approx(kd, rel=1e-12)
    assert loss.item() == pytest.approx(g_loss + 2.0 * kd, rel=1e-12)
    assert torch.allclose(grad_of(loss, l), t(g_grad) + 2.0 * t(kd_grad), rtol=1e-12, atol=1e-15)


def test_kdrl_gradient_at_zero_advantage_is_kd_only():
    # spec property 5: at A = 0 the student is still pulled toward the teacher
    logp, old, teacher, A, mask = random_batch(7)
    x = logp.clone().requires_grad_(True)
    loss, _ = kdrl_loss(x, old, teacher, torch.zeros_like(A), mask, kd_coef=0.5)
    kd_grad = grad_of(kl_penalty(x, teacher, mask, estimator="k2"), x)
    assert torch.allclose(grad_of(loss, x), 0.5 * kd_grad, rtol=1e-12, atol=1e-15)
    assert kd_grad.abs().sum() > 0


def test_kdrl_default_clip_bounds():
    # defaults eps_low 0.2, eps_high 0.28, as grpo_loss; ratios 1.5 (A > 0) and 0.5 (A < 0)
    # sit outside both bounds, so the defaults decide the value
    import math as _m

    l = t([[_m.log(1.5), _m.log(0.5)]])
    zero = torch.zeros(1, 2, dtype=torch.float64)
    loss, _ = kdrl_loss(l, zero, l, t([[1.0, -1.0]]), torch.ones(1, 2), kd_coef=1.0)
    assert loss.item() == pytest.approx(-(1.28 - 0.8) / 2, rel=1e-12)


@pytest.mark.parametrize("aggregation", AGGS)
def test_kdrl_class_is_the_function_with_annealed_coefficient(aggregation):
    traj = Trajectory(mask=torch.tensor(MASK), advantages=t(ADV), old_logp=t(ROWS_OLD),
                      teacher_logp=t(ROWS_T), max_new_tokens=6)
    objective = KDRL(kd_coef=0.1, kd_coef_final=0.5, estimator="k3", eps_low=EPS[0],
                     eps_high=EPS[1], aggregation=aggregation)
    C = 6 if aggregation.endswith("norm") else None
    g_loss, g_grad = _ref_grpo(aggregation, C)
    kd, kd_grad = ref_kl_term(ROWS_L, ROWS_T, MASK, aggregation, C, "k3")
    for progress, coef in ((0.0, 0.1), (0.25, 0.2), (1.0, 0.5), (3.0, 0.5)):
        l = t(ROWS_L).requires_grad_(True)
        loss, m = objective(l, traj, progress=progress)
        assert m["kdrl/kd_coef"].item() == pytest.approx(coef)
        assert loss.item() == pytest.approx(g_loss + coef * kd, rel=1e-12)
        assert torch.allclose(grad_of(loss, l), t(g_grad) + coef * t(kd_grad), rtol=1e-12,
                              atol=1e-15)


def test_kdrl_coefficient():
    assert KDRL(kd_coef=0.3).coefficient(0.9) == 0.3
    assert KDRL(kd_coef=0.3, kd_coef_final=0.1).coefficient(0.5) == pytest.approx(0.2)
    assert KDRL(kd_coef=0.3, kd_coef_final=0.1).coefficient(2.0) == pytest.approx(0.1)
    assert KDRL(kd_coef=5e-3, kd_coef_final=1e-3).coefficient(0.0) == 5e-3
