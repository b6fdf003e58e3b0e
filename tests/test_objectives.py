"""Objectives on tiny hand-computed examples (docs/method.md)."""

import math

import pytest
import torch

from rlad_pl.objectives import (
    aggregate,
    completion_logprobs,
    group_advantages,
    grpo_loss,
    kdrl_loss,
    kl_penalty,
    token_entropy,
    trrd_loss,
)

INF, NAN = math.inf, math.nan
AGGS = ("seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm")
POLICY_KEYS = {
    "ratio/mean",
    "ratio/min",
    "ratio/max",
    "clip/frac_low",
    "clip/frac_high",
    "clip/frac_pos_adv",
    "clip/frac_neg_adv",
}
TRRD_KEYS = POLICY_KEYS | {
    "trrd/log_ratio_teacher_mean",
    "trrd/log_ratio_teacher_abs_mean",
    "trrd/clamp_active_frac",
    "trrd/anchor_stopped_frac",
    "trrd/anchor_widened_frac",
}


def t(rows):
    return torch.tensor(rows, dtype=torch.float64)


def grad_of(loss, x):
    (g,) = torch.autograd.grad(loss, x)
    return g


# ---------------------------------------------------------------- aggregation

VALUES = t([[1.0, 2.0, 3.0], [4.0, NAN, -INF], [NAN, NAN, NAN]])
MASK = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0]])


@pytest.mark.parametrize(
    "aggregation, kwargs, expected",
    [
        ("token-mean", {}, (1 + 2 + 3 + 4) / 4),
        ("seq-mean-token-mean", {}, (2 + 4) / 2),  # the empty completion is left out
        ("seq-mean-token-sum-norm", {"sum_norm_constant": 4}, (6 / 4 + 4 / 4) / 2),
        ("seq-mean-token-sum-norm", {}, (6 / 3 + 4 / 3) / 2),  # default constant: T = 3
    ],
)
def test_aggregate(aggregation, kwargs, expected):
    assert aggregate(VALUES, MASK, aggregation, **kwargs).item() == pytest.approx(
        expected, abs=1e-15
    )


@pytest.mark.parametrize("aggregation", AGGS)
def test_empty_completion_contributes_nothing(aggregation):
    kw = {"sum_norm_constant": 3} if aggregation.endswith("norm") else {}
    assert torch.equal(
        aggregate(VALUES, MASK, aggregation, **kw),
        aggregate(VALUES[:2], MASK[:2], aggregation, **kw),
    )


@pytest.mark.parametrize("aggregation", AGGS)
def test_all_empty_batch_is_zero_with_a_gradient(aggregation):
    v = torch.full((2, 3), NAN, dtype=torch.float64, requires_grad=True)
    out = aggregate(v, torch.zeros(2, 3), aggregation)
    assert out.item() == 0 and out.requires_grad
    assert torch.equal(grad_of(out, v), torch.zeros(2, 3, dtype=torch.float64))


def test_aggregate_rejects_unknown_and_bad_constant():
    with pytest.raises(ValueError):
        aggregate(VALUES, MASK, "mean")
    with pytest.raises(ValueError):
        aggregate(VALUES, MASK, "seq-mean-token-sum-norm", sum_norm_constant=0)


# ---------------------------------------------------------------- GRPO


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


# ---------------------------------------------------------------- TRRD


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


def test_trrd_anchor_stopped_and_widened():
    # token 1 (teacher prefers, A < 0): r_GRPO = 1, r_TRRD = exp(0.5 * -0.8) < 0.8 -> stopped.
    # token 2 (A > 0): r_GRPO = exp(0.3) > 1.28 clipped, r_TRRD = exp(0.15 - 0.25) not -> widened.
    l = t([[-1.0, -1.0]])
    _, m = trrd_loss(l, t([[-1.0, -1.3]]), t([[-0.2, -0.5]]), t([[-1.0, 1.0]]), torch.ones(1, 2))
    assert m["trrd/anchor_stopped_frac"].item() == 0.5
    assert m["trrd/anchor_widened_frac"].item() == 0.5


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


def _random(seed, B=5, T=6, per_token=False):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(B, T, generator=g) < 0.7
    mask[-1] = False

    def lp(scale):
        return torch.where(mask, -scale * torch.rand(B, T, generator=g, dtype=torch.float64), -INF)

    A = torch.randn((B, T) if per_token else (B,), generator=g, dtype=torch.float64)
    return lp(2.0), lp(2.0), lp(5.0), A, mask


@pytest.mark.parametrize("aggregation", AGGS)
@pytest.mark.parametrize("per_token", [False, True])
def test_alpha_one_is_grpo_bit_for_bit(aggregation, per_token):
    logp, old, teacher, A, mask = _random(0, per_token=per_token)
    x = logp.clone().requires_grad_(True)
    ref, ref_m = grpo_loss(x, old, A, mask, aggregation=aggregation)
    ref_g = grad_of(ref, x)
    for l_T in (teacher, None, torch.full_like(teacher, NAN)):
        y = logp.clone().requires_grad_(True)
        loss, m = trrd_loss(y, old, l_T, A, mask, alpha=1.0, aggregation=aggregation)
        assert torch.equal(loss, ref) and torch.equal(grad_of(loss, y), ref_g)
        assert all(torch.equal(m[k], ref_m[k]) for k in POLICY_KEYS)


def test_teacher_required_below_alpha_one():
    logp, old, _, A, mask = _random(1)
    with pytest.raises(ValueError):
        trrd_loss(logp, old, None, A, mask)
    with pytest.raises(ValueError):
        trrd_loss(logp, old, logp, A, mask, alpha=1.5)


def _losses(logp, old, teacher, A, mask, aggregation="seq-mean-token-mean"):
    return {
        "trrd": trrd_loss(logp, old, teacher, A, mask, aggregation=aggregation)[0],
        "grpo": grpo_loss(logp, old, A, mask, aggregation=aggregation)[0],
        "kdrl": kdrl_loss(logp, old, teacher, A, mask, kd_coef=0.1, aggregation=aggregation)[0],
        "kl": kl_penalty(logp, teacher, mask, aggregation=aggregation),
    }


@pytest.mark.parametrize("aggregation", AGGS)
def test_garbage_padding_and_empty_completions_never_nan(aggregation):
    logp, old, teacher, A, mask = _random(2)
    teacher = torch.where(mask, teacher, NAN)
    x = logp.clone().requires_grad_(True)
    for name, loss in _losses(x, old, teacher, A, mask, aggregation).items():
        g = grad_of(loss, x)
        assert torch.isfinite(loss) and torch.isfinite(g).all(), name
        assert (g[~mask] == 0).all(), name
    # removing the empty completion changes nothing (seq-mean over non-empty completions)
    kept = _losses(logp[:-1], old[:-1], teacher[:-1], A[:-1], mask[:-1], aggregation)
    for name, loss in _losses(logp, old, teacher, A, mask, aggregation).items():
        assert torch.equal(loss, kept[name]), name


def test_all_empty_batch():
    logp = torch.full((2, 3), -INF, dtype=torch.float64, requires_grad=True)
    mask = torch.zeros(2, 3)
    zeros = torch.zeros(2, 3, dtype=torch.float64)
    for loss in _losses(logp, logp.detach(), logp.detach(), t([1.0, -1.0]), mask).values():
        assert loss.item() == 0 and torch.equal(grad_of(loss, logp), zeros)
    _, m = trrd_loss(logp, logp.detach(), logp.detach(), t([1.0, -1.0]), mask)
    assert set(m) == TRRD_KEYS and all(torch.isfinite(v) for v in m.values())


def test_metrics_are_detached_scalars():
    logp, old, teacher, A, mask = _random(3)
    x = logp.clone().requires_grad_(True)
    for fn in (
        lambda: trrd_loss(x, old, teacher, A, mask),
        lambda: grpo_loss(x, old, A, mask),
        lambda: kdrl_loss(x, old, teacher, A, mask, kd_coef=0.1),
    ):
        for v in fn()[1].values():
            assert v.dim() == 0 and not v.requires_grad
    assert set(kdrl_loss(x, old, teacher, A, mask, kd_coef=0.1)[1]) == POLICY_KEYS | {
        "kdrl/kd_term"
    }


# ---------------------------------------------------------------- KL and KDRL

L, L_T = t([[-1.0, -2.0]]), t([[-1.5, -1.0]])  # d = l - l_T = (0.5, -1)
KD = {
    "k1": (0.5 - 1) / 2,
    "k2": (0.125 + 0.5) / 2,
    "k3": ((math.exp(-0.5) + 0.5 - 1) + (math.exp(1) - 1 - 1)) / 2,
}


@pytest.mark.parametrize("estimator", sorted(KD))
def test_kl_and_kdrl_values(estimator):
    mask = torch.ones(1, 2)
    assert kl_penalty(L, L_T, mask, estimator=estimator).item() == pytest.approx(
        KD[estimator], abs=1e-15
    )
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


def test_kdrl_kd_mask_and_unknown_estimator():
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
    with pytest.raises(ValueError):
        kl_penalty(L, L_T, torch.ones(1, 2), estimator="k4")


# ---------------------------------------------------------------- advantages


def test_group_advantages():
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    A, zero_variance = group_advantages(rewards, 4)
    std = math.sqrt(0.1875)  # population std of (1, 0, 1, 1)
    expected = torch.tensor([0.25, -0.75, 0.25, 0.25, 0, 0, 0, 0]) / torch.tensor(
        [std + 1e-6] * 4 + [1] * 4
    )
    assert torch.allclose(A, expected)
    assert zero_variance.tolist() == [False] * 4 + [True] * 4
    A, _ = group_advantages(rewards, 4, scale="none")
    assert torch.allclose(A, torch.tensor([0.25, -0.75, 0.25, 0.25, 0, 0, 0, 0]))
    A, zero_variance = group_advantages(torch.tensor([1, 1, 0, 1]), 2)  # integer rewards
    assert A.dtype == torch.float32 and zero_variance.tolist() == [True, True, False, False]
    with pytest.raises(ValueError):
        group_advantages(rewards, 3)
    with pytest.raises(ValueError):
        group_advantages(rewards, 4, scale="max")


# ---------------------------------------------------------------- log-probs


def test_completion_logprobs_and_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 7, 11, generator=g, requires_grad=True)
    tokens = torch.randint(0, 11, (2, 7), generator=g)
    ref = torch.log_softmax(logits, -1).gather(-1, tokens[..., None]).squeeze(-1)
    full = completion_logprobs(logits, tokens)
    assert full.dtype == torch.float32 and torch.allclose(full, ref, atol=1e-6)
    for chunk in (1, 3, 7, 100):
        assert torch.equal(completion_logprobs(logits, tokens, chunk_size=chunk), full)
        assert torch.equal(token_entropy(logits, chunk_size=chunk), token_entropy(logits))
    assert logits.grad is None and torch.isfinite(grad_of(full.sum(), logits)).all()
    p = torch.softmax(logits.detach(), -1)
    assert torch.allclose(token_entropy(logits), -(p * p.log()).sum(-1), atol=1e-6)
    masked = logits.detach().clone()
    masked[..., :5] = -INF  # e.g. a masked vocabulary: p log p = 0 there
    assert torch.isfinite(token_entropy(masked)).all()
    assert completion_logprobs(logits.detach().bfloat16(), tokens).dtype == torch.float32
    cold = logits.detach() / 0.6  # temperature 0.6, scaled chunk by chunk
    for chunk in (None, 3):
        assert torch.allclose(completion_logprobs(logits.detach(), tokens, chunk_size=chunk,
                                                  temperature=0.6),
                              completion_logprobs(cold, tokens), atol=1e-6)
        assert torch.allclose(token_entropy(logits, chunk_size=chunk, temperature=0.6),
                              token_entropy(cold), atol=1e-6)
    assert completion_logprobs(logits[:, :0], tokens[:, :0]).shape == (2, 0)
