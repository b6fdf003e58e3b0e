"""Symbolic proofs of the gradient properties of docs/method.md (no sampling).

Each ``prove_*`` returns a list of ``(claim, holds)``; a property passes when every claim holds.
Signs are decided by :func:`analysis.branches.sign_of` (sympy simplification under the parameter
ranges of :mod:`analysis.expressions`); the one external lemma is that ``log`` is increasing on
``(0, inf)``.
"""

from __future__ import annotations

import sympy as sp

from analysis.branches import (
    CLIP_REGIONS,
    Undecided,
    at,
    branches,
    d,
    gradient_expected,
    hi,
    lo,
    p,
    q,
    resolve,
    sign_of,
)
from analysis.expressions import (
    KD_ESTIMATORS,
    A,
    alpha,
    c,
    grpo_surrogate,
    l,
    l_old,
    l_T,
    lam,
    log_anchor,
    r,
    surrogate,
    trrd_log_ratio,
    trrd_surrogate,
)

Y = sp.Symbol("Y", real=True)  # teacher offset l_T - l_old at the first update
TEACHER_OFFSETS = {  # l_T - l_old: prefers (> 0) or dislikes (< 0), inside or beyond the clamp
    "prefers, |l_T - l_old| < c": {Y: c * p / (p + q)},
    "prefers, |l_T - l_old| > c": {Y: c + d},
    "dislikes, |l_T - l_old| < c": {Y: -c * p / (p + q)},
    "dislikes, |l_T - l_old| > c": {Y: -c - d},
}


def _is_zero(expr) -> bool:
    return sp.simplify(expr) == 0


def _sign(expr, region=None):
    try:
        return sign_of(expr, region)
    except Undecided:
        return None


def prove_derivative(clamp_form: str = "ratio"):
    """D: ``ds/dl = A r du/dl`` unclipped, 0 clipped; ``du/dl`` is 1 or ``alpha`` (paper clamp)."""
    claims = []
    for b in branches(clamp_form):
        expected = A * b.ratio * b.du_dl if b.unclipped else 0
        name = f"{b.clamp}/{b.clip}/A{b.sign}"
        claims.append(
            (f"{name}: ds/dl = {'A r du/dl' if b.unclipped else '0'}", _is_zero(b.ds_dl - expected))
        )
        du_dl = 1 if (b.clamp == "inside" or clamp_form == "anchor") else alpha
        claims.append((f"{name}: du/dl = {du_dl}", _is_zero(b.du_dl - du_dl)))
    if clamp_form == "anchor":  # the two forms agree where no clamp bites, and at the first update
        inside = {b.u for b in branches("anchor") if b.clamp == "inside"}
        paper = {b.u for b in branches("ratio") if b.clamp == "inside"}
        claims.append(
            (
                "no clamp: anchor form = paper form",
                all(_is_zero(u1 - u2) for u1 in inside for u2 in paper),
            )
        )
        u0 = (
            (trrd_log_ratio("ratio") - trrd_log_ratio("anchor")).subs(l, l_old).subs(l_T, l_old + Y)
        )
        claims.append(
            (
                "l = l_old: anchor form = paper form",
                all(_sign(resolve(u0, reg), reg) == 0 for reg in TEACHER_OFFSETS.values()),
            )
        )
    return claims


def prove_property_1():
    """1: non-zero iff (A > 0, r < 1 + eps_high) or (A < 0, r > 1 - eps_low); zero at A = 0."""
    return [
        (
            f"{b.clamp}/{b.clip}/A{b.sign}: ds/dl {'!=' if gradient_expected(b) else '=='} 0",
            (_sign(at(b, b.ds_dl)) not in (0, None)) == gradient_expected(b)
            and _sign(at(b, b.ds_dl)) is not None,
        )
        for b in branches()
    ]


def prove_property_2():
    """2: selective imitation at the first update (``l = l_old``)."""
    claims = []
    u0 = trrd_log_ratio().subs(l, l_old).subs(l_T, l_old + Y)
    for name, region in TEACHER_OFFSETS.items():
        want = -1 if name.startswith("prefers") else 1
        claims.append(
            (
                f"{name}: r {'<' if want < 0 else '>'} 1 at l = l_old",
                _sign(resolve(u0, region), region) == want,
            )
        )
    for b in branches():
        g = _sign(at(b, b.ds_dl))
        if b.sign == "+" and b.clip != "above":
            claims.append(
                (f"A>0, r < 1+eps_high ({b.clamp}/{b.clip}): pushed up, ds/dl > 0", g == 1)
            )
        if b.sign == "-":
            want = 0 if b.clip == "below" else -1
            claims.append(
                (f"A<0 ({b.clamp}/{b.clip}): ds/dl {'= 0' if want == 0 else '< 0'}", g == want)
            )
        claims.append(
            (f"{b.clamp}/{b.clip}/A{b.sign}: r increases with l (du/dl > 0)", _sign(b.du_dl) == 1)
        )
    # Where the clamp does not bite, the anchor moves the stopping points toward the teacher:
    # a preferred token's push-down (A < 0) stops at a higher l than under GRPO, a disliked
    # token's push-up (A > 0) at a lower l; the shift is (1 - alpha) (l_T - l_old).
    u_inside = next(b.u for b in branches() if b.clamp == "inside")
    for bound, offset, want in ((lo, d, 1), (hi, -d, -1)):
        l_trrd = sp.solve(sp.Eq(u_inside, sp.log(bound)), l)[0]
        l_grpo = sp.solve(sp.Eq(l - l_old, sp.log(bound)), l)[0]
        shift = sp.simplify(l_trrd - l_grpo)
        claims.append(
            (
                f"stop at r = {bound}: shifted by (1 - alpha)(l_T - l_old)",
                _is_zero(shift - (1 - alpha) * (l_T - l_old))
                and _sign(shift.subs(l_T, l_old + offset)) == want,
            )
        )
    return claims


def prove_property_3():
    """3: trust region around the anchor."""
    claims = [
        (f"{b.clamp}/{b.clip}/A{b.sign}: u = l - log anchor", _is_zero(b.u - (l - log_anchor)))
        for b in branches()
        if b.clamp == "inside"
    ]
    region = CLIP_REGIONS["inside"]
    claims.append(
        (
            "clip inside: log(1 - eps_low) < u < log(1 + eps_high)",
            _sign(r, region) == 1 and _sign(r - lo, region) == 1 and _sign(hi - r, region) == 1,
        )
    )
    for b in branches():
        if not (b.unclipped and b.sign != "0"):
            continue
        region = CLIP_REGIONS[b.clip]
        bound = (hi - r) if b.sign == "+" else (r - lo)
        where = "u < log(1 + eps_high)" if b.sign == "+" else "u > log(1 - eps_low)"
        claims.append(
            (
                f"{b.clamp}/{b.clip}/A{b.sign}: gradient only while {where}",
                _sign(r, region) == 1 and _sign(bound, region) == 1,
            )
        )
    return claims


def prove_property_4():
    """4: ``alpha = 1`` is GRPO exactly (loss and gradient); the teacher does not appear."""
    claims = []
    for form in ("ratio", "anchor"):
        s1 = trrd_surrogate(form).subs(alpha, 1)
        claims += [
            (f"{form}: s(alpha=1) = s_GRPO", _is_zero(s1 - grpo_surrogate())),
            (
                f"{form}: ds/dl(alpha=1) = ds_GRPO/dl",
                _is_zero(sp.diff(s1, l) - sp.diff(grpo_surrogate(), l)),
            ),
            (f"{form}: l_T absent at alpha=1", l_T not in s1.free_symbols),
        ]
    return claims


def prove_property_5():
    """5: KDRL's teacher pull does not depend on A (acts at A = 0); TRRD's is 0 at A = 0."""
    claims = []
    s0 = surrogate(sp.exp(l - l_old), 0)
    for name, k in KD_ESTIMATORS.items():
        g = sp.diff(-surrogate(sp.exp(l - l_old), A) + lam * k, l)
        g0 = sp.diff(-s0 + lam * k, l)
        zeros = sp.solveset(g0, l, domain=sp.S.Reals)
        claims += [
            (
                f"KDRL {name}: d(kd term)/dl independent of A",
                _is_zero(sp.diff(sp.diff(lam * k, l), A)),
            ),
            (
                f"KDRL {name}: at A = 0 the gradient is non-zero for l != l_T",
                zeros in (sp.S.EmptySet, sp.FiniteSet(l_T)) and _is_zero(g.subs(A, 0) - g0),
            ),
        ]
    claims += [
        (f"TRRD {b.clamp}/{b.clip}: ds/dl = 0 at A = 0", _is_zero(at(b, b.ds_dl)))
        for b in branches()
        if b.sign == "0"
    ]
    claims.append(("TRRD: A = 0 makes s = 0", _is_zero(trrd_surrogate().subs(A, 0))))
    return claims


PROOFS = {
    "D": lambda: prove_derivative("ratio"),
    "D'": lambda: prove_derivative("anchor"),
    "1": prove_property_1,
    "2": prove_property_2,
    "3": prove_property_3,
    "4": prove_property_4,
    "5": prove_property_5,
}
