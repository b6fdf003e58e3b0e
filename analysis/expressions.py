"""The objectives of docs/method.md as sympy expressions, with the spec's symbol names.

``X`` stands for the clamped quantity (``l - l_T`` in the paper's form) and ``r`` for the ratio,
so that the case analysis can reason about the clamp and the clip separately
(:mod:`analysis.branches`). Parameter ranges used in the proofs: ``c, eps_high > 0``,
``0 < eps_low < 1``, ``0 < alpha < 1`` (``alpha = 1`` is property 4, on its own).
"""

from __future__ import annotations

import sympy as sp

l, l_old, l_T, A = sp.symbols("l l_old l_T A", real=True)
alpha, c, eps_low, eps_high = sp.symbols("alpha c eps_low eps_high", positive=True)
X = sp.Symbol("X", real=True)
r = sp.Symbol("r", positive=True)
lam = sp.Symbol("lambda_kd", positive=True)

#: Every numeric parameter of the objectives, in the order the lambdified functions take them.
ARGS = (l, l_old, l_T, A, alpha, c, eps_low, eps_high)

#: ``eps_low`` and ``alpha`` in (0, 1), written with positive free symbols so that sympy's
#: assumption system can decide signs: ``eps_low = 1 / (1 + k_low)``, ``alpha = 1 / (1 + k_alpha)``.
k_low, k_alpha = sp.symbols("k_low k_alpha", positive=True)
PARAMETER_RANGES = {eps_low: 1 / (1 + k_low), alpha: 1 / (1 + k_alpha)}


def clamp(x, lo, hi):
    """``clamp(x, lo, hi)``."""
    return sp.Max(lo, sp.Min(hi, x))


def clip(ratio):
    """``clip(r, 1 - eps_low, 1 + eps_high)``."""
    return clamp(ratio, 1 - eps_low, 1 + eps_high)


def surrogate(ratio, advantage):
    """``s = min(r A, clip(r) A)``."""
    return sp.Min(ratio * advantage, clip(ratio) * advantage)


#: ``log r_TRRD`` as a function of ``X``, and what ``X`` stands for, per clamp form.
#: ``"ratio"`` (paper): ``alpha (l - l_old) + (1 - alpha) clamp(l - l_T, -c, c)``.
#: ``"anchor"``: ``l - log anchor``, ``log anchor = l_old + (1 - alpha) clamp(l_T - l_old, -c, c)``.
LOG_RATIO = {
    "ratio": (alpha * (l - l_old) + (1 - alpha) * clamp(X, -c, c), l - l_T),
    "anchor": (l - l_old - (1 - alpha) * clamp(X, -c, c), l_T - l_old),
}


def trrd_log_ratio(clamp_form: str = "ratio"):
    """``u = log r_TRRD`` in terms of ``l, l_old, l_T``."""
    u, x = LOG_RATIO[clamp_form]
    return u.subs(X, x)


def trrd_surrogate(clamp_form: str = "ratio"):
    """The TRRD per-token surrogate ``s(l)``."""
    return surrogate(sp.exp(trrd_log_ratio(clamp_form)), A)


def grpo_surrogate():
    """The GRPO per-token surrogate, ``r = exp(l - l_old)``."""
    return surrogate(sp.exp(l - l_old), A)


#: The unclamped anchor: ``log anchor = alpha * l_old + (1 - alpha) * l_T``.
log_anchor = alpha * l_old + (1 - alpha) * l_T

#: KL estimators of KL(pi_S || pi_T) on the student's token (KDRL).
KD_ESTIMATORS = {
    "k1": l - l_T,
    "k2": sp.Rational(1, 2) * (l - l_T) ** 2,
    "k3": sp.exp(l_T - l) - (l_T - l) - 1,
}
