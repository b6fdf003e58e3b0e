"""Symbolic answer equivalence: trees from `latex.parse_answer` -> sympy values -> comparison.

sympy objects are built directly from the tree with sympy's constructors (no string parsing of
any kind). Before each operation that could blow up (an integer power, a factorial, a binomial)
the operands are checked against caps, so the size of every number sympy computes is bounded.
Comparison: exact first (equal rationals / structurally equal expressions), then numeric
values at 30 digits: of constants, or at random points for expressions with free symbols
(`\\cos^2\\theta-\\sin^2\\theta` vs `\\cos 2\\theta`: no trig simplification is needed).
Numeric values are mpmath numbers and the comparison never asks sympy's assumption system
(`is_infinite` of a symbolic expression alone could take most of the 1 s limit on a loaded
machine); an exact `expand` of the difference is the fallback for constants that do not
evaluate. This module is what the verifier worker process runs; callers go through
`rlad_pl.tasks.math.verify`, which adds the wall-clock limit.
"""

from __future__ import annotations

import random

import mpmath
import sympy as sp

from .caps import DECIMAL_TOL, MAX_BITS, MAX_EXPONENT, MAX_FACTORIAL, MAX_ITEMS
from .latex import Reject, choice_letter, parse_answer, text_key

REL_TOL = 1e-12
RATIO_TOL = 1e-9  # proportional equations: the ratio at every point agrees this closely
POINTS = 5
_MP = mpmath.MPContext()
_MP.dps = 30
_INFINITIES = (sp.oo, sp.S.NegativeInfinity, sp.zoo)

_CONST = {"pi": sp.pi, "oo": sp.oo, "I": sp.I}
_FUNCS = {"sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "cot": sp.cot, "sec": sp.sec,
          "csc": sp.csc, "arcsin": sp.asin, "arccos": sp.acos, "arctan": sp.atan,
          "arccot": sp.acot, "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "exp": sp.exp,
          "ln": sp.log, "floor": sp.floor, "ceiling": sp.ceiling}


def _bits(r: sp.Rational) -> int:
    return max(int(r.p).bit_length(), int(r.q).bit_length())


def _checked(value):
    if isinstance(value, sp.Rational) and _bits(value) > MAX_BITS:
        raise Reject("number too large")
    return value


class Builder:
    """Tree -> sympy. `pm` picks the sign of `\\pm` terms (+1 / -1)."""

    def __init__(self, pm: int = 1):
        self.pm = pm
        self.symbols: dict[str, sp.Symbol] = {}

    def symbol(self, name: str):
        if name == "e":
            return sp.E
        if name == "i":
            return sp.I
        if name not in self.symbols:
            self.symbols[name] = sp.Symbol(name)
        return self.symbols[name]

    def scalar(self, node):
        kind = node[0]
        if kind == "num":
            value = node[1]
            return sp.Rational(value.numerator, value.denominator)
        if kind == "sym":
            return self.symbol(node[1])
        if kind == "const":
            return _CONST[node[1]]
        if kind == "group":
            return self.scalar(node[1])
        if kind == "neg":
            return -self.scalar(node[1])
        if kind == "add":
            return _checked(sp.Add(*[self.scalar(t) for t in node[1]]))
        if kind == "mul":
            out = sp.Integer(1)
            for f in node[1]:
                out = _checked(out * self.scalar(f))
            return out
        if kind == "div":
            num, den = self.scalar(node[1]), self.scalar(node[2])
            if den == 0:
                raise Reject("division by zero")
            return _checked(num / den)
        if kind == "pow":
            return self.power(self.scalar(node[1]), self.scalar(node[2]))
        if kind == "root":
            radicand = self.scalar(node[1])
            index = sp.Integer(2) if node[2] is None else self.scalar(node[2])
            if index == 0:
                raise Reject("zeroth root")
            if index.is_Integer and index % 2 == 1 and radicand.is_number and \
                    radicand.is_negative:  # the real cube root: \sqrt[3]{-8} = -2
                return -self.power(-radicand, 1 / index)
            return self.power(radicand, 1 / index)
        if kind == "pm":
            return self.scalar(node[1]) + self.pm * self.scalar(node[2])
        if kind == "fact":
            arg = self.scalar(node[1])
            if arg.is_Number and (not arg.is_Integer or arg < 0 or arg > MAX_FACTORIAL):
                raise Reject("factorial out of range")
            return sp.factorial(arg)
        if kind == "binom":
            n, k = self.scalar(node[1]), self.scalar(node[2])
            if n.is_Number and (not n.is_Integer or abs(n) > MAX_EXPONENT):
                raise Reject("binomial out of range")
            return sp.binomial(n, k)
        if kind == "abs":
            return sp.Abs(self.scalar(node[1]))
        if kind == "pct":
            return self.scalar(node[1]) / 100
        if kind == "deg":
            return self.scalar(node[1]) * sp.pi / 180
        if kind == "func":
            name, args = node[1], [self.scalar(a) for a in node[2]]
            if name in ("log", "lg"):
                base = args[1] if len(args) > 1 else sp.Integer(10)
                if base == 1 or base == 0 or args[0] == 0:
                    raise Reject("bad logarithm")
                return sp.log(args[0], base)
            return _FUNCS[name](args[0])
        raise Reject(f"not a scalar: {kind}")

    @staticmethod
    def power(base, exponent):
        if exponent.is_Number:
            if abs(exponent) > MAX_EXPONENT:
                raise Reject("exponent too large")
            if base.is_Rational and exponent.is_Rational:
                if base == 0 and exponent <= 0:
                    raise Reject("0 to a non-positive power")
                if _bits(base) * abs(exponent) > MAX_BITS:
                    raise Reject("power too large")
        elif base.is_Number and abs(base) > 1 and exponent.has(sp.Pow) and \
                any(a.is_Number and abs(a) > 64 for a in exponent.atoms(sp.Number)):
            raise Reject("exponent tower")
        return _checked(sp.Pow(base, exponent))


# ----------------------------------------------------------------------------- values
# A value is one of: ("scalar", expr, flags), ("tuple", [values]), ("list", [values]) (a
# comma list: unordered against lists/sets, ordered against tuples), ("set", [values]),
# ("interval", left_closed, a, b, right_closed), ("union", [intervals]), ("matrix", rows of
# exprs), ("eq", lhs, rhs), ("text", key).

def _has_pm(node) -> bool:
    if not isinstance(node, tuple):
        return False
    if node and node[0] == "pm":
        return True
    return any(_has_pm(x) for x in node if isinstance(x, tuple)) or any(
        _has_pm(y) for x in node if isinstance(x, list) for y in x)


def _flags(node) -> dict:
    flags = {"pct": False, "deg": False, "dec": False}
    while node[0] in ("group",):
        node = node[1]
    if node[0] == "pct":
        flags["pct"] = True
    elif node[0] == "deg":
        flags["deg"] = True
    inner = node[1] if node[0] in ("pct", "deg", "neg") else node
    if inner[0] == "num" and inner[2] == "dec":
        flags["dec"] = True
    return flags


def _single_symbol(node) -> str | None:
    while node[0] == "group":
        node = node[1]
    if node[0] == "sym" and node[1] not in ("e", "i"):
        return node[1]
    return None


def _is_call(node) -> bool:
    """`f(x)`, `g(t)`, `p(1)`: a letter applied to one group (as an equation's left side)."""
    return node[0] == "mul" and len(node[1]) == 2 and node[1][0][0] == "sym" and \
        node[1][1][0] == "group" and len(node[1][0][1]) == 1


def to_value(node, builder: Builder | None = None):
    """The comparable value of a parsed answer."""
    b = builder or Builder()
    kind = node[0]
    if kind == "group":
        return to_value(node[1], b)
    if kind in ("tuple", "list", "set"):
        items = node[1]
        if len(items) > MAX_ITEMS:
            raise Reject("too many items")
        values = [to_value(x, b) for x in items]
        if kind != "tuple":  # x = 1, x = 2  ->  1, 2 ; a \pm inside a list flattens
            flat = []
            for v in values:
                flat += v[1] if v[0] == "list" and v[2:] == ("pm",) else [v]
            values = [v[2] if v[0] == "eq" and v[3] else v for v in flat]
        return (kind, values)
    if kind == "interval":
        return ("interval", node[1], b.scalar(node[2]), b.scalar(node[3]), node[4])
    if kind == "union":
        parts = []
        for side in (node[1], node[2]):
            v = to_value(side, b)
            if v[0] == "interval":
                parts.append(v)
            elif v[0] == "union":
                parts += v[1]
            else:
                raise Reject("union of non-intervals")
        return ("union", parts)
    if kind == "matrix":
        rows = node[1]
        if sum(len(r) for r in rows) > MAX_ITEMS:
            raise Reject("matrix too large")
        return ("matrix", [[b.scalar(c) for c in r] for r in rows])
    if kind == "eq":
        lhs_name = _single_symbol(node[1])
        rhs = to_value(node[2], b)
        if rhs[0] == "eq":
            rhs = rhs[2]  # x = y = 3 -> 3
        if lhs_name is None and _is_call(node[1]):  # f(x) = 2x + 1: the right side counts
            return ("eq", sp.Symbol("f(.)"), rhs, "call")
        lhs = b.scalar(node[1])
        return ("eq", lhs, rhs, lhs_name is not None)
    if kind == "rel":
        return _relation(node, b)
    if _has_pm(node):
        plus, minus = Builder(1), Builder(-1)
        plus.symbols = minus.symbols = b.symbols
        a, c = plus.scalar(node), minus.scalar(node)
        return ("list", [("scalar", a, _flags(node)), ("scalar", c, _flags(node))], "pm")
    return ("scalar", b.scalar(node), _flags(node))


def _relation(node, b: Builder):
    ops, exprs = node[1], node[2]
    if ops == ["in"]:
        return to_value(exprs[1], b)
    names = [_single_symbol(e) for e in exprs]
    if len(ops) == 1 and ops[0] in ("<", "<=", ">", ">="):
        if names[0] and not names[1]:
            bound = b.scalar(exprs[1])
            op = ops[0]
        elif names[1] and not names[0]:
            bound = b.scalar(exprs[0])
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[ops[0]]
        else:
            raise Reject("relation between expressions")
        if op in ("<", "<="):
            return ("interval", False, -sp.oo, bound, op == "<=")
        return ("interval", op == ">=", bound, sp.oo, False)
    if len(ops) == 2 and names[1] and not names[0] and not names[2]:
        lo, hi = b.scalar(exprs[0]), b.scalar(exprs[2])
        if all(o in ("<", "<=") for o in ops):
            return ("interval", ops[0] == "<=", lo, hi, ops[1] == "<=")
        if all(o in (">", ">=") for o in ops):
            return ("interval", ops[1] == ">=", hi, lo, ops[0] == ">=")
    raise Reject("unsupported relation")


# ------------------------------------------------------------------------- comparison
def _bad(x) -> bool:
    return bool(x.has(sp.zoo, sp.nan))


def _num(expr, subs=None):
    """The value of a constant (or of `expr` at `subs`) as a 30-digit mpmath complex number (any
    exponent range: no float overflow), or None when it does not evaluate to a finite number."""
    value = expr.evalf(30, subs=subs) if subs else expr.evalf(30)
    if not value.is_number:
        return None
    re_, im_ = value.as_real_imag()
    if not (re_.is_Float or re_.is_Rational) or not (im_.is_Float or im_.is_Rational):
        return None
    x = _MP.mpc(_MP.mpf(re_), _MP.mpf(im_))
    return x if _MP.isfinite(x) else None


def _close(x, y, tol: float) -> bool:
    """|x - y| <= tol * max(1, |x|, |y|) for `_num` values."""
    return bool(abs(x - y) <= tol * max(1, abs(x), abs(y)))


def _numeric_equal(a, b, tol) -> bool | None:
    """Compare two constant expressions numerically (None when they do not evaluate)."""
    x, y = _num(a), _num(b)
    if x is None or y is None:
        return None
    return _close(x, y, tol)


def _points(symbols, seed: int):
    rng = random.Random(seed)
    for k in range(POINTS):  # all positive first, then alternating signs
        yield {s: (1 if k == 0 or (k + j) % 2 == 0 else -1) * (
            sp.Rational(rng.randint(1200, 2900), 1000) + sp.Rational(rng.randint(1, 97), 100_003))
            for j, s in enumerate(symbols)}


def _small_powers(expr, limit: int = 12) -> bool:
    """No integer power above `limit` (expanding `(1+\\sqrt2)^{5000}` would take minutes)."""
    return all(not (p.exp.is_Integer and abs(p.exp) > limit) for p in expr.atoms(sp.Pow))


def scalar_equal(a, b, tol=REL_TOL) -> bool:
    if _bad(a) or _bad(b):
        return False
    if a == b:
        return True
    if a.has(*_INFINITIES) or b.has(*_INFINITIES):  # oo only equals oo (structurally)
        return False
    if a.is_Rational and b.is_Rational:
        return False
    free = sorted(a.free_symbols | b.free_symbols, key=str)
    if not free:
        result = _numeric_equal(a, b, tol)
        if result is not None:
            return result
        if _small_powers(a) and _small_powers(b):
            try:
                return sp.expand(a - b) == 0
            except (RecursionError, ValueError, TypeError):
                return False
        return False
    agree = 0
    for point in _points(free, seed=len(free)):
        x, y = _num(a, point), _num(b, point)
        if x is None or y is None:
            continue
        if not _close(x, y, tol):
            return False
        agree += 1
    return agree >= 2


def _scalar_alternatives(value):
    _, expr, flags = value
    out = [(expr, flags["dec"])]
    if flags["pct"]:  # 50% = 50 and 50% = 0.5
        out.append((expr * 100, flags["dec"]))
    if flags["deg"]:  # a final answer of 30 degrees is 30 (not pi/6: the question asks degrees)
        out = [(expr * 180 / sp.pi, flags["dec"])]
    return out


def _decimal_close(a, b) -> bool:
    """A written decimal matches a constant within DECIMAL_TOL (absolute): 0.333333 ~ 1/3,
    1.285714 ~ 9/7, but 314.159 is not 100 pi."""
    if a.free_symbols or b.free_symbols or _bad(a) or _bad(b):
        return False
    x, y = _num(a), _num(b)
    return x is not None and y is not None and bool(abs(x - y) <= DECIMAL_TOL)


def _scalar_values_equal(u, v) -> bool:
    if u[2]["deg"] and v[2]["deg"]:
        return scalar_equal(u[1], v[1])
    for a, dec_a in _scalar_alternatives(u):
        for b, dec_b in _scalar_alternatives(v):
            if scalar_equal(a, b, REL_TOL) or (dec_a or dec_b) and _decimal_close(a, b):
                return True
    return False


def _as_scalar(v):
    return ("scalar", v, {"pct": False, "deg": False, "dec": False})


def _ordered(xs, ys) -> bool:
    return len(xs) == len(ys) and all(values_equal(x, y) for x, y in zip(xs, ys, strict=True))


def _unordered(xs, ys) -> bool:
    if len(xs) != len(ys):
        return False
    left = list(ys)
    for x in xs:
        for j, y in enumerate(left):
            if values_equal(x, y):
                del left[j]
                break
        else:
            return False
    return True


def _distinct(xs):
    out = []
    for x in xs:
        if not any(values_equal(x, y) for y in out):
            out.append(x)
    return out


def _interval_equal(u, v) -> bool:
    return u[1] == v[1] and u[4] == v[4] and scalar_equal(u[2], v[2]) and \
        scalar_equal(u[3], v[3])


def _equation_equal(u, v) -> bool:
    """Equations: the same `x = ...` right sides, or proportional `lhs - rhs`."""
    if u[3] and v[3] and (u[1] == v[1] or "call" in (u[3], v[3])):
        return values_equal(u[2], v[2])
    if u[2][0] != "scalar" or v[2][0] != "scalar":
        return False
    f, g = u[1] - u[2][1], v[1] - v[2][1]
    free = sorted(f.free_symbols | g.free_symbols, key=str)
    if not free:
        return False
    ratio = None
    agree = 0
    for point in _points(free, seed=7):
        x, y = _num(f, point), _num(g, point)
        if x is None or y is None or abs(y) < 1e-12:
            continue
        r = x / y
        if abs(r) < 1e-12:
            return False
        if ratio is not None and not _close(r, ratio, RATIO_TOL):
            return False
        ratio = r
        agree += 1
    return agree >= 2


def values_equal(u, v) -> bool:
    ku, kv = u[0], v[0]
    if ku == "eq" and kv == "eq":
        return _equation_equal(u, v)
    if ku == "eq":
        return values_equal(u[2], v)
    if kv == "eq":
        return values_equal(u, v[2])
    if ku == "scalar" and kv == "scalar":
        return _scalar_values_equal(u, v)
    seqs = ("tuple", "list", "set")
    if ku in seqs and kv in seqs:
        if ku == "tuple" and kv == "tuple":
            return _ordered(u[1], v[1])
        if "tuple" in (ku, kv):
            return ku != "set" and kv != "set" and _ordered(u[1], v[1])
        if "set" in (ku, kv):  # {1, 1, 2} = {1, 2}
            return _unordered(_distinct(u[1]), _distinct(v[1]))
        return _unordered(u[1], v[1])
    if ku in ("list", "set") and kv == "scalar":  # 21, 21 (or {21}) is the value 21
        return bool(u[1]) and all(values_equal(x, v) for x in u[1])
    if kv in ("list", "set") and ku == "scalar":
        return bool(v[1]) and all(values_equal(u, y) for y in v[1])
    if ku in seqs and len(u[1]) == 1 and kv not in seqs:
        return values_equal(u[1][0], v)
    if kv in seqs and len(v[1]) == 1 and ku not in seqs:
        return values_equal(u, v[1][0])
    if ku == "interval" and kv == "interval":
        return _interval_equal(u, v)
    if ku == "union" or kv == "union":
        us = u[1] if ku == "union" else [u]
        vs = v[1] if kv == "union" else [v]
        if not all(x[0] == "interval" for x in us + vs) or len(us) != len(vs):
            return False
        left = list(vs)
        for x in us:
            for j, y in enumerate(left):
                if _interval_equal(x, y):
                    del left[j]
                    break
            else:
                return False
        return True
    if "interval" in (ku, kv):  # (1, 2) is also a pair
        iv, other = (u, v) if ku == "interval" else (v, u)
        if iv[1] or iv[4] or other[0] not in ("tuple", "list") or len(other[1]) != 2:
            return False
        return _ordered([_as_scalar(iv[2]), _as_scalar(iv[3])], other[1])
    if ku == "matrix" and kv == "matrix":
        return len(u[1]) == len(v[1]) and all(
            len(r) == len(s) and all(scalar_equal(a, b) for a, b in zip(r, s, strict=True))
            for r, s in zip(u[1], v[1], strict=True))
    if "matrix" in (ku, kv):  # a column or row vector against a tuple
        m, other = (u, v) if ku == "matrix" else (v, u)
        entries = [c for r in m[1] for c in r] if (len(m[1]) == 1 or all(
            len(r) == 1 for r in m[1])) else None
        if entries is None or other[0] not in ("tuple", "list") and not (
                other[0] == "interval" and not other[1] and not other[4]):
            return False
        items = other[1] if other[0] != "interval" else [_as_scalar(other[2]),
                                                         _as_scalar(other[3])]
        return _ordered([_as_scalar(c) for c in entries], items)
    return False


# ------------------------------------------------------------------------------ entry
def _value_of(text: str):
    return to_value(parse_answer(text))


def equivalent(pred: str, gold: str) -> bool:
    """Whether two answer strings denote the same mathematical object."""
    key_p, key_g = text_key(pred), text_key(gold)
    if key_g and key_p == key_g:
        return True
    letter = choice_letter(gold)
    if letter is not None and len(key_g) <= 3:
        return choice_letter(pred) == letter
    try:
        g = _value_of(gold)
    except (Reject, RecursionError, ValueError, TypeError, ZeroDivisionError, OverflowError,
            AttributeError, KeyError, IndexError):
        return False
    try:
        p = _value_of(pred)
    except (Reject, RecursionError, ValueError, TypeError, ZeroDivisionError, OverflowError,
            AttributeError, KeyError, IndexError):
        return False
    try:
        return bool(values_equal(p, g))
    except (RecursionError, ValueError, TypeError, ZeroDivisionError, OverflowError,
            AttributeError) as _:
        return False


def equivalent_any(preds: list[str], gold: str) -> bool:
    """The first candidate answer that parses decides (prose candidates are skipped)."""
    for i, pred in enumerate(preds):
        if i == len(preds) - 1 or _parses(pred):
            return equivalent(pred, gold)
    return False


def _parses(text: str) -> bool:
    try:
        parse_answer(text)
        return True
    except Reject:
        return False
    except Exception:  # noqa: BLE001
        return False


__all__ = ["equivalent", "equivalent_any", "scalar_equal", "to_value",
           "values_equal"]
