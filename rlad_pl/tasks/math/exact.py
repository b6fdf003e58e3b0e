"""The exact fast path of the verifier: plain arithmetic answers as `Fraction`s, in-process.

Answers are parsed by a small recursive-descent parser into exact `Fraction`s: numbers
(commas as thousands separators, decimals, percent signs dropped), `+ - * / ^`, `\\frac{a}{b}`,
`\\cdot`, `\\times`, `\\div`, parentheses and braces. Every step is capped (characters, tokens,
digits, nesting, exponent, size of intermediate results), so a call is bounded in time and
memory. `verify` uses it to decide plain numbers without a round trip to the symbolic worker;
anything outside this grammar goes to `rlad_pl.tasks.math.symbolic`.
"""

from __future__ import annotations

import re
from fractions import Fraction

MAX_CHARS = 400  # longest answer string considered at all
MAX_TOKENS = 120
MAX_DIGITS = 40  # per number literal
MAX_DEPTH = 12  # bracket / unary nesting
MAX_EXPONENT = 64
MAX_BITS = 512  # numerator and denominator of every intermediate result

_TOKEN = re.compile(r"\s*(?:([0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
                    r"|(\\frac|\\dfrac|\\tfrac|\\cdot|\\times|\\div)"
                    r"|(\*\*|[-+*/^(){}]))")
_THOUSANDS = re.compile(r"(?<=[0-9]),(?=[0-9]{3}(?![0-9]))")
_DROP = ("\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "\\ ", "\\$", "$", "\\%", "%", "^\\circ",
         "^{\\circ}", "\\displaystyle")


# Fullwidth ASCII (e.g. "１２") and common math symbols; other non-ASCII characters are left
# alone and never parse as numbers (no NFKC: it would turn "2²" into "22").
_UNICODE = {**{c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)},
            **{ord(k): v for k, v in {"\u2212": "-", "\u00d7": "*", "\u00f7": "/", "\u22c5": "*",
                                       "\u00b7": "*", "\u3000": " "}.items()}}


class _Reject(Exception):
    """The input is outside the supported grammar or over a cap."""


def normalize(text: str) -> str:
    """Canonical answer string: fullwidth forms and math symbols to ASCII, drop LaTeX
    spacing/`$`/percent/degree, thousands commas, `\\text{...}` wrappers, a leading `x =`, and a
    trailing period."""
    text = text.translate(_UNICODE).strip()
    text = re.sub(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}", r"\1", text)
    for junk in _DROP:
        text = text.replace(junk, "")
    text = re.sub(r"^[A-Za-z]\s*=\s*", "", text.strip())
    text = _THOUSANDS.sub("", text.replace("{,}", ","))
    return text.strip().rstrip(".").strip()


def _check(value: Fraction) -> Fraction:
    if value.numerator.bit_length() > MAX_BITS or value.denominator.bit_length() > MAX_BITS:
        raise _Reject("number too large")
    return value


class _Parser:
    def __init__(self, text: str):
        self.tokens = self._tokenize(text)
        self.i = 0
        self.depth = 0

    @staticmethod
    def _tokenize(text: str) -> list[str]:
        tokens, pos = [], 0
        while pos < len(text):
            if text[pos].isspace():
                pos += 1
                continue
            match = _TOKEN.match(text, pos)
            if match is None:
                raise _Reject(f"unexpected character {text[pos]!r}")
            tokens.append(match.group(match.lastindex))
            pos = match.end()
            if len(tokens) > MAX_TOKENS:
                raise _Reject("too many tokens")
        return tokens

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise _Reject(f"expected {expected or 'more input'}")
        self.i += 1
        return token

    def parse(self) -> Fraction:
        value = self.expr()
        if self.peek() is not None:
            raise _Reject(f"trailing {self.peek()!r}")
        return value

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Reject("nested too deeply")

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            op, rhs = self.take(), self.term()
            value = _check(value + rhs if op == "+" else value - rhs)
        return value

    def term(self) -> Fraction:
        value = self.unary()
        while self.peek() in ("*", "/", "\\cdot", "\\times", "\\div"):
            op, rhs = self.take(), self.unary()
            if op in ("/", "\\div"):
                if rhs == 0:
                    raise _Reject("division by zero")
                value = _check(value / rhs)
            else:
                value = _check(value * rhs)
        return value

    def unary(self) -> Fraction:
        if self.peek() in ("-", "+"):
            self.enter()
            sign = self.take()
            value = self.unary()
            self.depth -= 1
            return -value if sign == "-" else value
        return self.power()

    def power(self) -> Fraction:
        base = self.atom()
        if self.peek() not in ("^", "**"):
            return base
        self.take()
        negative = self.peek() == "-" and bool(self.take())
        exponent = self.atom()
        if self.peek() in ("^", "**"):
            raise _Reject("exponent towers are not supported")
        if exponent.denominator != 1 or abs(exponent) > MAX_EXPONENT:
            raise _Reject("exponent must be a small integer")
        if base == 0 and (negative or exponent == 0):
            raise _Reject("0 to a non-positive power")
        e = int(exponent)
        if max(base.numerator.bit_length(), base.denominator.bit_length()) * e > MAX_BITS:
            raise _Reject("power too large")
        return _check(base ** (-e if negative else e))

    def atom(self) -> Fraction:
        token = self.take()
        if token[0].isdigit() or token[0] == ".":
            if sum(c.isdigit() for c in token) > MAX_DIGITS:
                raise _Reject("too many digits")
            return Fraction(token)
        if token in ("(", "{"):
            self.enter()
            value = self.expr()
            self.take(")" if token == "(" else "}")
            self.depth -= 1
            return value
        if token in ("\\frac", "\\dfrac", "\\tfrac"):
            numerator, denominator = self.group(), self.group()
            if denominator == 0:
                raise _Reject("division by zero")
            return _check(numerator / denominator)
        raise _Reject(f"unexpected {token!r}")

    def group(self) -> Fraction:
        """`{expr}` or a single digit, as in `\\frac12`."""
        token = self.peek()
        if token == "{":
            return self.atom()
        if token is not None and token.isascii() and token.isdigit():
            self.take()
            first, rest = token[0], token[1:]
            if rest:  # \frac12 -> 1 then 2
                self.tokens.insert(self.i, rest)
            return Fraction(first)
        raise _Reject("\\frac needs two groups")


def parse_number(text: str) -> Fraction | None:
    """Exact value of an answer string, or None when it is outside the grammar or too large."""
    if not isinstance(text, str) or len(text) > 4 * MAX_CHARS:
        return None
    text = normalize(text)
    if not text or len(text) > MAX_CHARS:
        return None
    try:
        return _Parser(text).parse()
    except (_Reject, ValueError, ZeroDivisionError, OverflowError):
        return None


def is_expression(text: str) -> bool:
    """Whether a (short) text is made only of tokens of the arithmetic grammar."""
    if len(text) > 4 * MAX_CHARS:
        return False
    text = normalize(text)
    try:
        return bool(text) and bool(_Parser._tokenize(text))
    except _Reject:
        return False
