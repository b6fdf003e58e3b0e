"""Numeric checks of the same properties against a loss *implementation* (a callable).

The reference is the sympy derivation: at points built inside each branch (away from the
boundaries by a small margin), ``ds/dl`` from torch autograd through ``loss_fn`` (float64) must
equal the lambdified branch derivative, and the zero / sign conditions of properties 1-5 must
hold. ``loss_fn`` has ``trrd_loss``'s signature; pointing the checks at a broken variant makes
them fail (tests/test_analysis.py).

Each token sits alone in its completion (one real token per row, garbage ``-inf``/NaN on the
padding, plus one empty completion), so with ``seq-mean-token-mean`` over ``N`` real rows
``d loss / d l_i = -(ds/dl)_i / N``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy as sp
import torch

from analysis.branches import Branch, branches, gradient_expected
from analysis.expressions import ARGS, KD_ESTIMATORS, l, trrd_log_ratio
from rlad_pl.objectives import grpo_loss, kdrl_loss, trrd_loss


@dataclass(frozen=True)
class Params:
    alpha: float
    c: float
    eps_low: float
    eps_high: float

    @property
    def values(self):
        return self.alpha, self.c, self.eps_low, self.eps_high


PARAMS = (Params(0.5, 1.0, 0.2, 0.28), Params(0.3, 0.5, 0.1, 0.3), Params(0.8, 2.0, 0.25, 0.2))
MARGIN = 1e-3  # distance from every branch boundary, in log space
RTOL, ATOL = 1e-9, 1e-12
PAD_WIDTH = 3


def _lambdify(expr):
    f = sp.lambdify(ARGS, expr, "numpy")
    return lambda *args: np.broadcast_to(f(*args), np.shape(args[0])).astype(float)


# ---------------------------------------------------------------- points and gradients


def _interval(state, lo, hi, n, rng, beyond=1.5):
    """``n`` values in the region ``state`` of the interval ``(lo, hi)``; edges come first."""
    if state == "inside":
        return np.concatenate(
            [[lo + MARGIN, hi - MARGIN], rng.uniform(lo + MARGIN, hi - MARGIN, n - 2)]
        )
    if state == "below":
        return lo - MARGIN - np.concatenate([[0.0], rng.uniform(0, beyond, n - 1)])
    return hi + MARGIN + np.concatenate([[0.0], rng.uniform(0, beyond, n - 1)])


def branch_points(b: Branch, P: Params, n: int, rng, clamp_form="ratio"):
    """``n`` points ``(l, l_old, l_T, A)`` on branch ``b``, built from ``X`` and ``u = log r``."""
    x = _interval(b.clamp, -P.c, P.c, n, rng, beyond=2.0)
    u = _interval(b.clip, math.log(1 - P.eps_low), math.log(1 + P.eps_high), n, rng)
    l_ = rng.uniform(-4.0, -0.05, n)
    clamped = np.clip(x, -P.c, P.c)
    if clamp_form == "ratio":  # X = l - l_T, u = alpha (l - l_old) + (1 - alpha) clamp(X)
        l_T = l_ - x
        l_old = l_ - (u - (1 - P.alpha) * clamped) / P.alpha
    else:  # X = l_T - l_old, u = l - l_old - (1 - alpha) clamp(X)
        l_old = l_ - u - (1 - P.alpha) * clamped
        l_T = l_old + x
    A = {"+": 1.0, "-": -1.0, "0": 0.0}[b.sign] * rng.uniform(0.2, 2.0, n)
    return l_, l_old, l_T, A


def all_branch_points(P: Params, n: int, rng, clamp_form="ratio"):
    """Points on every branch, with the branch ``ds/dl`` and property 1's expectation per point."""
    cols, ds_dl, expected = [], [], []
    for b in branches(clamp_form):
        pts = branch_points(b, P, n, rng, clamp_form)
        cols.append(pts)
        ds_dl.append(_lambdify(b.ds_dl)(*pts, *P.values))
        expected.append(np.full(n, gradient_expected(b)))
    l_, l_old, l_T, A = (np.concatenate(c) for c in zip(*cols, strict=False))
    return (l_, l_old, l_T, A), np.concatenate(ds_dl), np.concatenate(expected)


def _batch(l_, l_old, l_T, A):
    """One real token per completion at a varying position, garbage padding, one empty row."""
    n = len(l_)
    mask = torch.zeros(n + 1, PAD_WIDTH, dtype=torch.bool)
    mask[torch.arange(n), torch.arange(n) % PAD_WIDTH] = True

    def spread(v, pad):
        t = torch.full((n + 1, PAD_WIDTH), pad, dtype=torch.float64)
        t[mask] = torch.as_tensor(v, dtype=torch.float64)
        return t

    logp = spread(l_, -math.inf).requires_grad_(True)
    adv = torch.cat([torch.as_tensor(A, dtype=torch.float64), torch.ones(1, dtype=torch.float64)])
    return logp, spread(l_old, -math.inf), spread(l_T, math.nan), adv, mask


def token_grads(loss_fn, points, **kwargs):
    """``(ds/dl per point, padding gradients and loss finite and padding gradient 0)``."""
    logp, old_logp, teacher_logp, adv, mask = _batch(*points)
    loss, _ = loss_fn(logp, old_logp, teacher_logp, adv, mask, **kwargs)
    (grad,) = torch.autograd.grad(loss, logp)
    clean = bool(torch.isfinite(loss)) and bool((grad[~mask] == 0).all())
    return -len(points[0]) * grad[mask].numpy(), clean


def _trrd_kwargs(P: Params, clamp_form=None):
    kw = {"alpha": P.alpha, "eps_low": P.eps_low, "eps_high": P.eps_high, "teacher_clip": P.c}
    return kw if clamp_form is None else {**kw, "clamp_form": clamp_form}


# ---------------------------------------------------------------- the checks


def check_derivative(loss_fn, clamp_form=None, n=6, seed=0):
    """D: autograd ``ds/dl`` equals the sympy branch derivative on all 27 branches."""
    rng, claims = np.random.default_rng(seed), []
    for P in PARAMS:
        points, ds_dl, _ = all_branch_points(P, n, rng, clamp_form or "ratio")
        g, clean = token_grads(loss_fn, points, **_trrd_kwargs(P, clamp_form))
        claims.append((f"{P}: autograd = sympy on every branch", np.allclose(g, ds_dl, RTOL, ATOL)))
        claims.append((f"{P}: padding gets gradient 0, no NaN", clean))
    return claims


def check_property_1(loss_fn, n=6, seed=1):
    """1: gradient non-zero exactly where the spec says; exactly 0 at A = 0 whatever the teacher."""
    rng, claims = np.random.default_rng(seed), []
    for P in PARAMS:
        points, _, expected = all_branch_points(P, n, rng)
        g, _ = token_grads(loss_fn, points, **_trrd_kwargs(P))
        claims.append((f"{P}: ds/dl != 0 iff expected", bool(((g != 0) == expected).all())))
        m = 4 * n
        wild = (rng.uniform(-4, 0, m), rng.uniform(-4, 0, m), rng.uniform(-30, 0, m), np.zeros(m))
        g0, _ = token_grads(loss_fn, wild, **_trrd_kwargs(P))
        claims.append((f"{P}: A = 0 gives exactly 0", bool((g0 == 0).all())))
    return claims


def _spec_grad(points, P: Params):
    """The spec's ``ds/dl`` at arbitrary points: classify each into its branch, evaluate there."""
    l_, _, l_T, A = points
    x = l_ - l_T
    u = _lambdify(trrd_log_ratio())(*points, *P.values)
    clamp_state = np.where(x > P.c, "above", np.where(x < -P.c, "below", "inside"))
    clip_state = np.where(
        u > math.log(1 + P.eps_high),
        "above",
        np.where(u < math.log(1 - P.eps_low), "below", "inside"),
    )
    sign = np.where(A > 0, "+", np.where(A < 0, "-", "0"))
    out = np.zeros(len(l_))
    for b in branches():
        sel = (clamp_state == b.clamp) & (clip_state == b.clip) & (sign == b.sign)
        out[sel] = _lambdify(b.ds_dl)(*(v[sel] for v in points), *P.values)
    return out


def check_property_2(loss_fn, n=8, seed=2):
    """2: selective imitation at the first update ``l = l_old``."""
    rng, claims = np.random.default_rng(seed), []
    for P in PARAMS:
        l_old = rng.uniform(-4, -0.05, n)
        for name, Y in (
            ("prefers", rng.uniform(0.05, 3, n)),
            ("dislikes", -rng.uniform(0.05, 3, n)),
        ):
            for sign in (1.0, -1.0):
                pts = (l_old, l_old, l_old + Y, sign * rng.uniform(0.2, 2, n))
                g, _ = token_grads(loss_fn, pts, **_trrd_kwargs(P))
                ok = np.allclose(g, _spec_grad(pts, P), RTOL, ATOL)
                if (name, sign) in (("prefers", 1.0), ("dislikes", -1.0)):
                    ok = ok and bool((np.sign(g) == sign).all())  # full push up / suppression
                claims.append(
                    (f"{P}: teacher {name}, A {'>' if sign > 0 else '<'} 0 at l = l_old", ok)
                )
        # Between TRRD's and GRPO's stopping points the anchor has already stopped the update:
        # a preferred token's push-down (A < 0), a disliked token's push-up (A > 0).
        for name, sign, bound in (
            ("prefers", -1.0, 1 - P.eps_low),
            ("dislikes", 1.0, 1 + P.eps_high),
        ):
            Y = -sign * P.c * rng.uniform(0.05, 0.3, n)
            l_T = l_old + Y
            l_trrd = math.log(bound) + P.alpha * l_old + (1 - P.alpha) * l_T
            l_grpo = l_old + math.log(bound)
            pts = ((l_trrd + l_grpo) / 2, l_old, l_T, sign * rng.uniform(0.2, 2, n))
            assert (np.abs(pts[0] - l_T) < P.c).all()
            g, _ = token_grads(loss_fn, pts, **_trrd_kwargs(P))
            g_grpo, _ = token_grads(loss_fn, pts, **{**_trrd_kwargs(P), "alpha": 1.0})
            claims.append(
                (
                    f"{P}: teacher {name}: update stopped before GRPO's stop",
                    bool((g == 0).all() and (g_grpo != 0).all()),
                )
            )
    return claims


def check_property_3(loss_fn, n=6, seed=3):
    """3: the gradient flows only inside the trust region around the anchor."""
    rng, claims = np.random.default_rng(seed), []
    for P in PARAMS:
        points, _, _ = all_branch_points(P, n, rng)
        g, _ = token_grads(loss_fn, points, **_trrd_kwargs(P))
        u = _lambdify(trrd_log_ratio())(*points, *P.values)
        A = points[3]
        up = (g != 0) & (A > 0)
        down = (g != 0) & (A < 0)
        claims.append(
            (
                f"{P}: A > 0 moves l only while u < log(1 + eps_high)",
                bool((u[up] < math.log(1 + P.eps_high)).all()),
            )
        )
        claims.append(
            (
                f"{P}: A < 0 moves l only while u > log(1 - eps_low)",
                bool((u[down] > math.log(1 - P.eps_low)).all()),
            )
        )
    return claims


def _random_batch(rng, B=6, T=5, per_token_adv=False):
    mask = torch.as_tensor(rng.uniform(size=(B, T)) < 0.7)
    mask[-1] = False  # one empty completion

    def rand(lo, hi):
        return torch.where(mask, torch.as_tensor(rng.uniform(lo, hi, (B, T))), -math.inf)

    A = torch.as_tensor(rng.normal(size=(B, T) if per_token_adv else B))
    return rand(-3, 0), rand(-3, 0), rand(-6, 0), A, mask


def check_property_4(loss_fn, grpo_fn=grpo_loss, seed=4):
    """4: ``alpha = 1`` is GRPO bit for bit; the teacher (even None or NaN) does not matter."""
    rng, claims = np.random.default_rng(seed), []
    for agg in ("seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"):
        for per_token in (False, True):
            logp, old, teacher, A, mask = _random_batch(rng, per_token_adv=per_token)
            ref_l = logp.clone().requires_grad_(True)
            ref, _ = grpo_fn(ref_l, old, A, mask, aggregation=agg)
            (ref_g,) = torch.autograd.grad(ref, ref_l)
            ok = True
            for l_T in (teacher, None, torch.full_like(teacher, math.nan)):
                x = logp.clone().requires_grad_(True)
                loss, _ = loss_fn(x, old, l_T, A, mask, alpha=1.0, aggregation=agg)
                (g,) = torch.autograd.grad(loss, x)
                ok = ok and torch.equal(loss, ref) and torch.equal(g, ref_g)
            claims.append(
                (f"{agg}, A {'[B,T]' if per_token else '[B]'}: loss and grad equal GRPO's", ok)
            )
    P = Params(1.0, 1.0, 0.2, 0.28)
    points, _, _ = all_branch_points(PARAMS[0], 6, rng)
    g, _ = token_grads(loss_fn, points, **_trrd_kwargs(P))
    claims.append(
        (
            "alpha = 1: autograd = sympy GRPO derivative",
            np.allclose(g, _spec_grad(points, P), RTOL, ATOL),
        )
    )
    return claims


def check_property_5(loss_fn, kdrl_fn=kdrl_loss, n=24, seed=5, kd_coef=0.3):
    """5: at A = 0 KDRL still pulls toward the teacher (A-independent term); TRRD does not move."""
    rng, claims = np.random.default_rng(seed), []
    pts = (rng.uniform(-4, 0, n), rng.uniform(-4, 0, n), rng.uniform(-8, 0, n), np.zeros(n))
    for P in PARAMS:
        g, _ = token_grads(loss_fn, pts, **_trrd_kwargs(P))
        claims.append((f"{P}: TRRD gradient exactly 0 at A = 0", bool((g == 0).all())))
    for name, k in KD_ESTIMATORS.items():
        pull = _lambdify(sp.diff(k, l))(*pts, 0.5, 1.0, 0.2, 0.28)
        g, _ = token_grads(kdrl_fn, pts, kd_coef=kd_coef, estimator=name)
        claims.append(
            (
                f"KDRL {name}: gradient at A = 0 is kd_coef dk/dl != 0",
                np.allclose(-g, kd_coef * pull, RTOL, ATOL) and bool((g != 0).all()),
            )
        )
    return claims


def run_numeric(loss_fn=trrd_loss, *, grpo_fn=grpo_loss, kdrl_fn=kdrl_loss):
    """All numeric checks against ``loss_fn``: ``{property: [(claim, holds), ...]}``.

    A check that raises counts as one failed claim.
    """
    checks = {
        "D": lambda: check_derivative(loss_fn),
        "D'": lambda: check_derivative(loss_fn, clamp_form="anchor"),
        "1": lambda: check_property_1(loss_fn),
        "2": lambda: check_property_2(loss_fn),
        "3": lambda: check_property_3(loss_fn),
        "4": lambda: check_property_4(loss_fn, grpo_fn),
        "5": lambda: check_property_5(loss_fn, kdrl_fn),
    }
    results = {}
    for name, check in checks.items():
        try:
            results[name] = check()
        except Exception as err:  # noqa: BLE001 - a broken implementation may not even run
            results[name] = [(f"raised {type(err).__name__}: {err}", False)]
    return results
