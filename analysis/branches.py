"""Case analysis of the TRRD surrogate and its derivative ``ds/dl`` on every branch.

A branch fixes three things: where ``X`` lies relative to the clamp (``inside`` ``|X| < c``,
``above`` ``X > c``, ``below`` ``X < -c``), where ``r`` lies relative to the clip (``below``
``r < 1 - eps_low``, ``inside``, ``above`` ``r > 1 + eps_high``) and the sign of ``A``. Each
region is written with fresh positive symbols (e.g. ``X = c + d``, ``r = (1 - eps_low) / (1 + d)``)
so that sympy *proves* which argument every ``Min``/``Max`` selects there; the surrogate then
reduces to one smooth expression whose derivative is taken with ``sympy.diff``. Boundaries have
measure zero and are not branches.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache

import sympy as sp

from analysis.expressions import LOG_RATIO, PARAMETER_RANGES, A, X, c, eps_high, eps_low, l, r
from analysis.expressions import surrogate as surrogate_of

d, p, q = sp.symbols("d p q", positive=True)
a = sp.Symbol("a", positive=True)
lo, hi = 1 - eps_low, 1 + eps_high

CLAMP_REGIONS = {
    "inside": {X: c * (p - q) / (p + q)},
    "above": {X: c + d},
    "below": {X: -c - d},
}
CLIP_REGIONS = {
    "below": {r: lo / (1 + d)},
    "inside": {r: (lo * p + hi * q) / (p + q)},
    "above": {r: hi + d},
}
SIGNS = {"+": a, "-": -a, "0": sp.Integer(0)}


class Undecided(Exception):
    """sympy could not decide the sign of an expression on a region."""


def sign_of(expr, region=None) -> int:
    """The sign (-1, 0, 1) of ``expr`` on ``region``, proved by sympy or :class:`Undecided`."""
    e = sp.sympify(expr).subs(region or {}).subs(PARAMETER_RANGES)
    e = sp.factor(sp.simplify(e))
    if e.is_zero:
        return 0
    if e.is_positive:
        return 1
    if e.is_negative:
        return -1
    raise Undecided(f"sign of {expr} on {region} not decided (reduced to {e})")


def resolve(expr, region):
    """``expr`` with every ``Min``/``Max`` replaced by the argument it selects on ``region``.

    On a tie (the arguments are equal there) the first argument is kept.
    """
    if not expr.args:
        return expr
    args = [resolve(arg, region) for arg in expr.args]
    if isinstance(expr, (sp.Min, sp.Max)):
        best = args[0]
        for arg in args[1:]:
            s = sign_of(arg - best, region)
            if (s < 0) if isinstance(expr, sp.Min) else (s > 0):
                best = arg
        return best
    return expr.func(*args)


@dataclass(frozen=True)
class Branch:
    clamp: str  # where X lies: inside / above / below the clamp
    clip: str  # where r lies: below / inside / above the clip range
    sign: str  # sign of A: + - 0
    u: sp.Expr  # log r on this branch, in l, l_old, l_T
    du_dl: sp.Expr
    s: sp.Expr  # surrogate on this branch, in l, l_old, l_T, A
    ds_dl: sp.Expr
    unclipped: bool  # min selects r * A (s depends on r)

    @property
    def advantage(self):
        return SIGNS[self.sign]

    @property
    def ratio(self):
        return sp.exp(self.u)


@cache
def branches(clamp_form: str = "ratio") -> tuple[Branch, ...]:
    """All 27 branches of the TRRD surrogate, with ``ds/dl`` derived on each."""
    u_X, x = LOG_RATIO[clamp_form]
    out = []
    for clamp_state, clip_state, sign in itertools.product(CLAMP_REGIONS, CLIP_REGIONS, SIGNS):
        u = resolve(u_X, CLAMP_REGIONS[clamp_state]).subs(X, x)
        s_r = resolve(surrogate_of(r, SIGNS[sign]), CLIP_REGIONS[clip_state])
        s = s_r.subs(r, sp.exp(u)).subs(a, A if sign == "+" else -A)  # back to the symbol A
        out.append(
            Branch(
                clamp=clamp_state,
                clip=clip_state,
                sign=sign,
                u=u,
                du_dl=sp.diff(u, l),
                s=s,
                ds_dl=sp.diff(s, l),
                unclipped=s_r.has(r),
            )
        )
    return tuple(out)


def gradient_expected(branch: Branch) -> bool:
    """Property 1: ds/dl != 0 iff (A > 0, r < 1 + eps_high) or (A < 0, r > 1 - eps_low)."""
    return (branch.sign == "+" and branch.clip != "above") or (
        branch.sign == "-" and branch.clip != "below"
    )


def at(branch: Branch, expr):
    """``expr`` (in ``A``) on the branch's advantage sign, ``A -> a, -a, 0``."""
    return expr.subs(A, branch.advantage)
