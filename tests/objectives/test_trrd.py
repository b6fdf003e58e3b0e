"""trrd_loss: hand cases at several alphas, both clamp forms, every aggregation, its metrics."""

import math

import pytest
import torch

from rlad_pl.objectives import (
    CLAMP_FORMS,
    GRPO,
    TRRD,
    TRRD_METRICS,
    Trajectory,
    grpo_loss,
    trrd_log_ratio,
    trrd_loss,
)
from tests.objectives.helpers import (
    AGGS,
    INF,
    NAN,
    POLICY_KEYS,
    TRRD_KEYS,
    grad_of,
    random_batch,
    ref_policy_loss,
    ref_trrd_log_ratio,
    t,
)


def test_trrd_names():
    assert CLAMP_FORMS == ("ratio", "anchor")
    assert set(TRRD_METRICS) == TRRD_KEYS - POLICY_KEYS


def test_trrd_hand_computed():
    # alpha = 0.5, c = 1.
    # token 1: l = l_old = -1, l_T = -0.5: u = 0.5 * clamp(-0.5) = -0.25, A = 1: s = r, ds/dl = r.
    # token 2: l = -1, l_old = -1.2, l_T = -4: u = 0.5 * 0.2 + 0.5 * clamp(3) = 0.6 (clamp active),
    #          A = -1: unclipped, s = -r, ds/dl = -r * alpha.
    l = t([[-1.0], [-1.0]]).requires_grad_(True)
    loss, m = trrd_loss(
        l, t([[-1.0], [-1.2]]), t([[-0.5], [-4.0]]), t([1.0, -1.0]), torch.ones(2, 1)
    )
    r1, r2 = math.exp(-0.25), math.exp(0.6)
    assert loss.item() == pytest.approx(-(r1 - r2) / 2, abs=1e-14)
    assert torch.allclose(grad_of(loss, l), t([[-r1 / 2], [0.5 * r2 / 2]]))
    assert set(m) == TRRD_KEYS
    assert m["trrd/clamp_active_frac"].item() == 0.5
    assert m["trrd/log_ratio_teacher_mean"].item() == pytest.approx((-0.5 + 3) / 2)
    assert m["trrd/log_ratio_teacher_abs_mean"].item() == pytest.approx((0.5 + 3) / 2)


def test_trrd_hand_computed_alpha_03_written_out():
    # alpha = 0.3, c = 1, one token per completion, eps (0.2, 0.28), seq-mean over 2 completions.
    # token 1: l = -1, l_old = -1.2, l_T = -1.5, A = 1:
    #   ratio form:  u = 0.3 * 0.2 + 0.7 * 0.5 = 0.41 (swapping alpha, 1 - alpha gives 0.29)
    #                r = exp(0.41) = 1.507 > 1.28: clipped, s = 1.28, no gradient
    #   anchor form: log anchor = -1.2 + 0.7 * clamp(-0.3) = -1.41, u = 0.41 as well (no clamp)
    # token 2: l = -1, l_old = -0.9, l_T = -3, A = -1:
    #   ratio form:  u = 0.3 * -0.1 + 0.7 * clamp(2) = -0.03 + 0.7 = 0.67, du/dl = 0.3
    #   anchor form: log anchor = -0.9 + 0.7 * clamp(-2.1) = -1.6, u = 0.6, du/dl = 1
    #   A < 0 and r > 0.8: unclipped, s = -r, ds/dl = -r du/dl
    l = t([[-1.0], [-1.0]]).requires_grad_(True)
    args = (t([[-1.2], [-0.9]]), t([[-1.5], [-3.0]]), t([1.0, -1.0]), torch.ones(2, 1))
    loss, _ = trrd_loss(l, *args, alpha=0.3)
    r2 = math.exp(0.67)
    assert loss.item() == pytest.approx(-(1.28 - r2) / 2, rel=1e-12)
    assert torch.allclose(grad_of(loss, l), t([[0.0], [0.3 * r2 / 2]]), rtol=1e-12)
    loss, _ = trrd_loss(l, *args, alpha=0.3, clamp_form="anchor")
    r2 = math.exp(0.6)
    assert loss.item() == pytest.approx(-(1.28 - r2) / 2, rel=1e-12)
    assert torch.allclose(grad_of(loss, l), t([[0.0], [r2 / 2]]), rtol=1e-12)


def test_trrd_anchor_stopped_and_widened():
    # token 1 (teacher prefers, A < 0): r_GRPO = 1, r_TRRD = exp(0.5 * -0.8) < 0.8 -> stopped.
    # token 2 (A > 0): r_GRPO = exp(0.3) > 1.28 clipped, r_TRRD = exp(0.15 - 0.25) not -> widened.
    l = t([[-1.0, -1.0]])
    _, m = trrd_loss(l, t([[-1.0, -1.3]]), t([[-0.2, -0.5]]), t([[-1.0, 1.0]]), torch.ones(1, 2))
    assert m["trrd/anchor_stopped_frac"].item() == 0.5
    assert m["trrd/anchor_widened_frac"].item() == 0.5


def test_trrd_metrics_asymmetric():
    # alpha 0.5, c 1, eps (0.2, 0.28); four real tokens and one padding column (garbage).
    # tok 1: A < 0, l = l_old = -1, l_T = -0.2: r_GRPO = 1, u = 0.5 * -0.8, r = 0.670 < 0.8: stopped
    # tok 2: A > 0, l = l_old = -1, l_T = -3: u = 0.5 * clamp(2) = 0.5, r = 1.649 > 1.28: stopped
    #        (clamp active)
    # tok 3: A > 0, l = -1, l_old = -1.3, l_T = -0.5: r_GRPO = 1.350 clipped, u = 0.15 - 0.25,
    #        r = 0.905 not: widened
    # tok 4: A > 0, l = l_old = l_T = -1: r = 1, nothing
    l = t([[-1.0, -1.0, -1.0, -1.0, NAN]])
    old = t([[-1.0, -1.0, -1.3, -1.0, -INF]])
    teacher = t([[-0.2, -3.0, -0.5, -1.0, NAN]])
    A = t([[-1.0, 1.0, 1.0, 1.0, 5.0]])
    _, m = trrd_loss(l, old, teacher, A, torch.tensor([[1, 1, 1, 1, 0]]))
    assert m["trrd/anchor_stopped_frac"].item() == 0.5
    assert m["trrd/anchor_widened_frac"].item() == 0.25
    assert m["trrd/clamp_active_frac"].item() == 0.25
    assert m["trrd/log_ratio_teacher_mean"].item() == pytest.approx((-0.8 + 2 - 0.5 + 0) / 4)
    assert m["trrd/log_ratio_teacher_abs_mean"].item() == pytest.approx((0.8 + 2 + 0.5) / 4)
    rs = [math.exp(-0.4), math.exp(0.5), math.exp(-0.1), 1.0]
    assert m["ratio/mean"].item() == pytest.approx(sum(rs) / 4)
    assert m["ratio/min"].item() == pytest.approx(min(rs))
    assert m["ratio/max"].item() == pytest.approx(max(rs))
    assert m["clip/frac_low"].item() == 0.25 and m["clip/frac_high"].item() == 0.25
    assert m["clip/frac_pos_adv"].item() == pytest.approx(1 / 3)
    assert m["clip/frac_neg_adv"].item() == 1.0


@pytest.mark.parametrize(
    "l, old, teacher, ratio_active, anchor_active",
    [
        (-1.0, -2.5, -2.2, 1.0, 0.0),  # |l - l_T| = 1.2 > 1, |l_T - l_old| = 0.3
        (-1.0, -2.5, -1.2, 0.0, 1.0),  # |l - l_T| = 0.2, |l_T - l_old| = 1.3 > 1
    ],
)
def test_clamp_active_depends_on_the_form(l, old, teacher, ratio_active, anchor_active):
    args = (t([[l]]), t([[old]]), t([[teacher]]), t([1.0]), torch.ones(1, 1))
    _, m = trrd_loss(*args, clamp_form="ratio")
    assert m["trrd/clamp_active_frac"].item() == ratio_active
    _, m = trrd_loss(*args, clamp_form="anchor")
    assert m["trrd/clamp_active_frac"].item() == anchor_active
    _, m = trrd_loss(*args, teacher_clip=None)
    assert m["trrd/clamp_active_frac"].item() == 0.0
    _, m = trrd_loss(*args, alpha=1.0)  # GRPO: nothing is clamped
    assert m["trrd/clamp_active_frac"].item() == 0.0


def test_trrd_clamp_forms_and_no_clamp():
    # l = -1, l_old = -1.2, l_T = -4, alpha = 0.5, c = 1, A = -1 (unclipped for r > 0.8).
    l = t([[-1.0]]).requires_grad_(True)
    args = (t([[-1.2]]), t([[-4.0]]), t([-1.0]), torch.ones(1, 1))
    cases = {  # clamp: (u, du/dl)
        ("ratio", 1.0): (0.1 + 0.5, 0.5),
        ("anchor", 1.0): (
            -1 - (-1.2 - 0.5 * 1),
            1.0,
        ),  # log anchor = l_old + 0.5 clamp(l_T - l_old)
        ("ratio", None): (0.1 + 0.5 * 3, 1.0),
    }
    for (form, c), (u, du_dl) in cases.items():
        loss, _ = trrd_loss(l, *args, teacher_clip=c, clamp_form=form)
        assert loss.item() == pytest.approx(math.exp(u)), (form, c)
        assert grad_of(loss, l).item() == pytest.approx(math.exp(u) * du_dl), (form, c)


# Three completions of 3, 1 and 2 real tokens in a padded width of 4, per-token A of both signs.
ROWS_L = [[-1.0, -0.4, -2.0, NAN], [-0.7, NAN, NAN, NAN], [-1.5, -0.2, NAN, NAN]]
ROWS_OLD = [[-1.1, -0.9, -1.8, -INF], [-0.5, -INF, -INF, -INF], [-1.0, -0.25, -INF, -INF]]
ROWS_T = [[-0.6, -1.5, -2.2, NAN], [-1.9, NAN, NAN, NAN], [-0.3, -0.9, NAN, NAN]]
MASK = [[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0]]
ADV = [[0.7, -0.5, 1.2, 9.0], [-1.3, 9.0, 9.0, 9.0], [-0.4, 0.9, 9.0, 9.0]]


def _reference(alpha, c, clamp_form, aggregation, C, eps):
    log_r, dlogr = [], []
    for rl, ro, rt, rm in zip(ROWS_L, ROWS_OLD, ROWS_T, MASK, strict=True):
        pairs = [
            ref_trrd_log_ratio(a, b, d, alpha, c, clamp_form) if m else (0.0, 0.0)
            for a, b, d, m in zip(rl, ro, rt, rm, strict=True)
        ]
        log_r.append([p[0] for p in pairs])
        dlogr.append([p[1] for p in pairs])
    return ref_policy_loss(log_r, dlogr, ADV, MASK, aggregation, C, *eps)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.8])
@pytest.mark.parametrize("clamp_form", CLAMP_FORMS)
@pytest.mark.parametrize("c", [1.0, 0.45, None])
def test_trrd_hand_cases_alpha_and_clamp(alpha, clamp_form, c):
    eps = (0.2, 0.28)
    l = t(ROWS_L).requires_grad_(True)
    loss, _ = trrd_loss(
        l,
        t(ROWS_OLD),
        t(ROWS_T),
        t(ADV),
        torch.tensor(MASK),
        alpha=alpha,
        teacher_clip=c,
        clamp_form=clamp_form,
    )
    expected, expected_grad = _reference(alpha, c, clamp_form, "seq-mean-token-mean", None, eps)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert torch.allclose(grad_of(loss, l), t(expected_grad), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("aggregation", AGGS)
@pytest.mark.parametrize("C", [None, 2.5, 9.0])
@pytest.mark.parametrize("clamp_form", CLAMP_FORMS)
def test_trrd_every_aggregation_and_constant(aggregation, C, clamp_form):
    eps = (0.12, 0.4)
    l = t(ROWS_L).requires_grad_(True)
    loss, _ = trrd_loss(
        l,
        t(ROWS_OLD),
        t(ROWS_T),
        t(ADV),
        torch.tensor(MASK),
        alpha=0.7,
        teacher_clip=0.6,
        eps_low=eps[0],
        eps_high=eps[1],
        aggregation=aggregation,
        clamp_form=clamp_form,
        sum_norm_constant=C,
    )
    expected, expected_grad = _reference(0.7, 0.6, clamp_form, aggregation, C, eps)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert torch.allclose(grad_of(loss, l), t(expected_grad), rtol=1e-12, atol=1e-15)


def test_trrd_log_ratio_function():
    l, old, teacher = t([-1.0, -1.0]), t([-1.2, -0.9]), t([-1.5, -3.0])
    for form in CLAMP_FORMS:
        for alpha, c in ((0.3, 1.0), (0.8, 0.5), (0.6, None)):
            got = trrd_log_ratio(l, old, teacher, alpha=alpha, c=c, clamp_form=form)
            want = [
                ref_trrd_log_ratio(a, b, d, alpha, c, form)[0]
                for a, b, d in zip(l.tolist(), old.tolist(), teacher.tolist(), strict=True)
            ]
            assert got.tolist() == pytest.approx(want, rel=1e-13), (form, alpha, c)
    # the default clamp form is the paper's ("ratio")
    assert torch.equal(
        trrd_log_ratio(l, old, teacher, alpha=0.3, c=1.0),
        trrd_log_ratio(l, old, teacher, alpha=0.3, c=1.0, clamp_form="ratio"),
    )
    with pytest.raises(ValueError, match="geometric"):
        trrd_log_ratio(l, old, teacher, alpha=0.3, c=1.0, clamp_form="geometric")


def test_trrd_defaults():
    # alpha 0.5, eps (0.2, 0.28), c = 1, ratio form, seq-mean-token-mean
    l = t(ROWS_L).requires_grad_(True)
    loss, _ = trrd_loss(l, t(ROWS_OLD), t(ROWS_T), t(ADV), torch.tensor(MASK))
    expected, expected_grad = _reference(
        0.5, 1.0, "ratio", "seq-mean-token-mean", None, (0.2, 0.28)
    )
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert torch.allclose(grad_of(loss, l), t(expected_grad), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("aggregation", AGGS)
@pytest.mark.parametrize("per_token", [False, True])
def test_alpha_one_is_grpo_bit_for_bit(aggregation, per_token):
    logp, old, teacher, A, mask = random_batch(0, per_token=per_token)
    x = logp.clone().requires_grad_(True)
    ref, ref_m = grpo_loss(x, old, A, mask, aggregation=aggregation)
    ref_g = grad_of(ref, x)
    for l_T in (teacher, None, torch.full_like(teacher, NAN)):
        y = logp.clone().requires_grad_(True)
        loss, m = trrd_loss(y, old, l_T, A, mask, alpha=1.0, aggregation=aggregation)
        assert torch.equal(loss, ref) and torch.equal(grad_of(loss, y), ref_g)
        assert all(torch.equal(m[k], ref_m[k]) for k in POLICY_KEYS)


def test_alpha_one_without_teacher_has_zero_teacher_metrics():
    logp, old, _, A, mask = random_batch(4)
    _, m = trrd_loss(logp, old, None, A, mask, alpha=1.0)
    assert set(m) == TRRD_KEYS
    assert all(m[k].item() == 0 for k in TRRD_METRICS)


def test_teacher_required_below_alpha_one():
    logp, old, _, A, mask = random_batch(1)
    with pytest.raises(ValueError):
        trrd_loss(logp, old, None, A, mask)
    with pytest.raises(ValueError):
        trrd_loss(logp, old, logp, A, mask, alpha=1.5)
    with pytest.raises(ValueError, match="-0.1"):
        trrd_loss(logp, old, logp, A, mask, alpha=-0.1)
    # the ends of [0, 1] are legal
    for alpha in (0.0, 1.0):
        assert torch.isfinite(trrd_loss(logp, old, logp, A, mask, alpha=alpha)[0])


def test_clamp_active_directly():
    from rlad_pl.objectives.trrd import clamp_active

    l, old, teacher = t([-1.0, -1.0, -1.0]), t([-2.5, -1.0, -1.0]), t([-2.2, -2.0, -3.0])
    # default form is "ratio": |l - l_T| = 1.2, 1.0 (exactly c: not active), 2.0
    assert clamp_active(l, old, teacher, c=1.0).tolist() == [True, False, True]
    assert clamp_active(l, old, teacher, c=1.0, clamp_form="anchor").tolist() == [
        False, False, True,  # |l_T - l_old| = 0.3, 1.0, 2.0
    ]
    off = clamp_active(l, old, teacher, c=None)
    assert off.dtype == torch.bool and not off.any()


def test_error_messages():
    logp, old, _, A, mask = random_batch(5)
    with pytest.raises(ValueError, match="teacher_logp is required unless alpha == 1"):
        trrd_loss(logp, old, None, A, mask, alpha=0.5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_trrd_dtypes_follow_the_log_probs(dtype):
    # float64 advantages with float32 log-probs: the loss stays float32 (A is cast to l's dtype)
    logp, old, teacher, A, mask = (x.to(dtype) if x.is_floating_point() else x
                                   for x in random_batch(6))
    loss, m = trrd_loss(logp, old, teacher, A.double(), mask)
    assert loss.dtype == dtype and all(v.dtype == dtype for v in m.values())
    loss, m = trrd_loss(logp, old, None, A.double(), mask, alpha=1.0)
    assert loss.dtype == dtype and all(v.dtype == dtype for v in m.values())


@pytest.mark.parametrize("aggregation", AGGS)
@pytest.mark.parametrize("clamp_form", CLAMP_FORMS)
def test_trrd_class_is_the_function(aggregation, clamp_form):
    eps = (0.12, 0.4)
    traj = Trajectory(mask=torch.tensor(MASK), advantages=t(ADV), old_logp=t(ROWS_OLD),
                      teacher_logp=t(ROWS_T), max_new_tokens=6)
    l = t(ROWS_L).requires_grad_(True)
    objective = TRRD(alpha=0.3, teacher_clip=0.6, clamp_form=clamp_form, eps_low=eps[0],
                     eps_high=eps[1], aggregation=aggregation)
    loss, m = objective(l, traj)
    C = 6 if aggregation.endswith("norm") else None
    expected, expected_grad = _reference(0.3, 0.6, clamp_form, aggregation, C, eps)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert torch.allclose(grad_of(loss, l), t(expected_grad), rtol=1e-12, atol=1e-15)
    assert set(m) == TRRD_KEYS


def test_trrd_class_alpha_one_needs_no_teacher_and_is_grpo():
    traj = Trajectory(mask=torch.tensor(MASK), advantages=t(ADV), old_logp=t(ROWS_OLD))
    a, _ = TRRD(alpha=1.0)(t(ROWS_L), traj)
    b, _ = GRPO()(t(ROWS_L), traj)
    assert torch.equal(a, b)


def test_trrd_class_first_update_without_old_logp():
    # l_old = l: log r = (1 - alpha) clamp(l - l_T) at alpha 0.8 (c = 1)
    l_rows = [[-1.0, -1.0]]
    traj = Trajectory(mask=torch.ones(1, 2), advantages=t([1.0]), teacher_logp=t([[-0.5, -3.0]]))
    l = t(l_rows).requires_grad_(True)
    loss, _ = TRRD(alpha=0.8)(l, traj)
    r = [math.exp(0.2 * -0.5), math.exp(0.2 * 1.0)]  # second: clamp(2) = 1, r = 1.221 < 1.28
    assert loss.item() == pytest.approx(-sum(r) / 2, rel=1e-12)
    # d log r / dl = 1 inside the clamp, alpha outside
    assert grad_of(loss, l)[0].tolist() == pytest.approx([-r[0] / 2, -0.8 * r[1] / 2])
