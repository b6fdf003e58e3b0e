"""Math answer checking: `verify(completion, gold)` with a wall-clock limit that always holds.

1. The final answer is extracted from the completion (`extract.answer_candidates`: `<answer>`
   block, last `\\boxed{}`, `####`, "the answer is ...", last `$...$`, last number) and from the
   gold (`\\boxed{}` of a MATH solution, `####` of a GSM8K one, or the gold string itself).
2. In-process, without sympy: plain arithmetic on both sides compares exactly as `Fraction`s
   (`exact.parse_number`), equal normalised strings match, and answers outside the LaTeX
   grammar are compared as text (or as multiple-choice letters).
3. Everything else goes to a verifier worker process (`pool`): `latex.parse_answer` builds a
   capped tree, `symbolic` builds sympy objects from it and compares (exact, then numeric).
   The caller waits at most until the deadline (`timeout`, default `DEFAULT_TIMEOUT` = 1 s
   from the start of the call); an overrunning or crashed checker is killed and replaced, and
   the answer counts as wrong.

Counters: `verifier_stats()` returns cumulative counts for this process (`calls`, `fast`,
`symbolic`, `timeouts`, `crashes`); `warm_up()` waits until the worker is ready (it is started
in the background when this module is imported; the very first start is not charged to a
call's limit); `check()` returns a `Verdict` whose `timed_out` flag
the math task reports as the `verifier_timeouts` score component (logged by the module as
`train/reward/verifier_timeouts`: the fraction of a step's completions whose check hit the
limit).
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from fractions import Fraction

from . import caps as symbolic_caps
from . import exact
from .extract import answer_candidates, extract_answer
from .latex import (
    FUNCTIONS,
    MAX_CHARS,
    Reject,
    choice_letter,
    choice_with_value,
    clean,
    parse_answer,
    text_key,
    tokenize,
)
from .pool import get_pool

DEFAULT_TIMEOUT = 1.0
MARKERS = ("\\boxed", "\\fbox", "####", "</answer>")
MAX_TEXT_COMPARE = 400  # answers compared as strings are at most this long
_WORDS = re.compile(r"[A-Za-z]{3,}")
_COMMAND = re.compile(r"\\(?:begin|end)\s*\{[^{}]*\}|\\[A-Za-z]+")
_TEXT_GROUP = re.compile(r"\\(?:text|mathrm|textbf|mbox)\s*\{[^{}]*\}")
_FLAG_CHARS = ("%", "circ", "\u00b0", "degree")


@dataclass(frozen=True)
class Verdict:
    """Outcome of one check. `status`: "exact" (decided in-process), "symbolic" (decided by the
    worker), "no_answer", "timeout" (the limit was hit, or no worker was ready in time) or
    "crash" (the checker died; it has been replaced)."""

    correct: bool
    status: str

    @property
    def timed_out(self) -> bool:
        return self.status == "timeout"


class _Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(("calls", "fast", "symbolic", "timeouts", "crashes"), 0)

    def add(self, key: str) -> None:
        with self.lock:
            self.counts[key] += 1


_STATS = _Stats()


def verifier_stats() -> dict[str, int]:
    """Cumulative counts of this process's `verify` calls by outcome."""
    with _STATS.lock:
        return dict(_STATS.counts)


def reset_verifier_stats() -> None:
    with _STATS.lock:
        for key in _STATS.counts:
            _STATS.counts[key] = 0


def warm_up(wait: bool = True) -> bool:
    """Start this process's verifier worker (and wait until sympy is imported there)."""
    return get_pool().warm_up(wait=wait)


def _looks_like_math(text: str) -> bool:
    """Whether a whole completion is a bare answer (only tokens of the answer grammar)."""
    if len(text) > MAX_CHARS:
        return False
    try:
        cleaned = clean(text)
        tokens = tokenize(cleaned)
    except Reject:
        return False
    words = _WORDS.findall(_COMMAND.sub(" ", _TEXT_GROUP.sub(" ", cleaned)))
    return bool(tokens) and not any(w.lower() not in FUNCTIONS for w in words)


def _gold_text(gold) -> str | None:
    if isinstance(gold, bool):
        return None
    if isinstance(gold, (int, Fraction)):
        return str(gold)
    if isinstance(gold, float):
        return repr(int(gold)) if gold.is_integer() else repr(gold)
    if not isinstance(gold, str):
        return None
    if any(m in gold for m in MARKERS):
        gold = extract_answer(gold) or ""
    gold = gold.strip()
    return gold if gold and len(gold) <= MAX_CHARS else None


def _parses(text: str):
    try:
        return parse_answer(text)
    except Reject:
        return None
    except (RecursionError, ValueError, TypeError, IndexError):
        return None


def _bits(x: Fraction) -> int:
    return max(x.numerator.bit_length(), x.denominator.bit_length())


def rational_value(tree) -> Fraction | None:
    """Exact value of a tree of rational arithmetic (None when it has anything else: roots,
    symbols, functions, lists). Raises `Reject` over the same caps as the symbolic checker."""
    kind = tree[0]
    if kind == "num":
        return tree[1]
    if kind in ("group", "neg"):
        inner = rational_value(tree[1])
        return None if inner is None else (inner if kind == "group" else -inner)
    if kind in ("add", "mul"):
        out = Fraction(0 if kind == "add" else 1)
        for part in tree[1]:
            value = rational_value(part)
            if value is None:
                return None
            out = out + value if kind == "add" else out * value
            if _bits(out) > symbolic_caps.MAX_BITS:
                raise Reject("number too large")
        return out
    if kind == "div":
        num, den = rational_value(tree[1]), rational_value(tree[2])
        if num is None or den is None:
            return None
        if den == 0:
            raise Reject("division by zero")
        return num / den
    if kind == "pow":
        base, exponent = rational_value(tree[1]), rational_value(tree[2])
        if exponent is not None and abs(exponent) > symbolic_caps.MAX_EXPONENT:
            raise Reject("exponent too large")
        if base is None or exponent is None or exponent.denominator != 1:
            return None
        if base == 0 and exponent <= 0:
            raise Reject("0 to a non-positive power")
        if _bits(base) * abs(exponent) > symbolic_caps.MAX_BITS:
            raise Reject("power too large")
        return base ** int(exponent)
    return None


def _decimal(tree) -> bool:
    while tree[0] in ("group", "neg"):
        tree = tree[1]
    return tree[0] == "num" and tree[2] == "dec"


def _fast(pred: str, gold: str, pred_tree, gold_tree) -> bool | None:
    """Decide in-process when that is cheap and certain; None: ask the symbolic checker."""
    if not any(f in pred or f in gold for f in _FLAG_CHARS):
        x, y = exact.parse_number(pred), exact.parse_number(gold)
        if x is not None and y is not None:
            if x == y:
                return True
            if "." not in pred and "." not in gold:
                return False
    if len(pred) <= MAX_TEXT_COMPARE and len(gold) <= MAX_TEXT_COMPARE:
        key = text_key(gold)
        if key and text_key(pred) == key:
            return True
    letter = choice_letter(gold)
    if letter is not None and len(text_key(gold)) <= 3:
        return choice_letter(pred) == letter
    if gold_tree is None or pred_tree is None:
        return False  # words, or over a cap: the string comparison above was the test
    try:
        a, b = rational_value(pred_tree), rational_value(gold_tree)
    except Reject:
        return False  # e.g. 9^9^9^9: over the caps here and in the symbolic checker alike
    if a is None or b is None or any(f in pred or f in gold for f in _FLAG_CHARS):
        return None
    if a == b:
        return True
    if _decimal(pred_tree) or _decimal(gold_tree):  # 0.333333 ~ 1/3, as in `symbolic`
        return abs(a - b) <= Fraction(symbolic_caps.DECIMAL_TOL)
    return False


def check(pred_text: str, gold, *, timeout: float | None = None) -> Verdict:
    """Verdict on the final answer of `pred_text` against `gold`. Never raises; returns within
    `timeout` seconds (default `DEFAULT_TIMEOUT`) plus a few milliseconds.

    `gold` may be a number, an answer string, a GSM8K solution (`####`) or a MATH solution
    (`\\boxed`)."""
    start = time.monotonic()
    deadline = start + (DEFAULT_TIMEOUT if timeout is None else float(timeout))
    _STATS.add("calls")
    try:
        gold_text = _gold_text(gold)
        if gold_text is None or not isinstance(pred_text, str):
            return Verdict(False, "no_answer")
        candidates = answer_candidates(pred_text, looks_like_math=_looks_like_math)
        if not candidates:
            return Verdict(False, "no_answer")
        trees = [_parses(c) for c in candidates]
        pick = next((i for i, t in enumerate(trees) if t is not None), 0)
        pred, pred_tree = candidates[pick], trees[pick]
        gold_choice, pred_choice = choice_with_value(gold_text), choice_with_value(pred)
        if gold_choice is not None:  # "(B) 12": the letter or the value
            if choice_letter(pred) == gold_choice[0]:
                _STATS.add("fast")
                return Verdict(True, "exact")
            gold_text = gold_choice[1]
        if pred_choice is not None:
            pred = pred_choice[1]
            pred_tree = _parses(pred)
        decided = _fast(pred, gold_text, pred_tree, _parses(gold_text))
        if decided is not None:
            _STATS.add("fast")
            return Verdict(decided, "exact")
        result, status = get_pool().check([pred], gold_text, deadline)
    except Exception:  # noqa: BLE001 - a verifier must never crash a training step
        return Verdict(False, "no_answer")
    if status in ("timeout", "unavailable"):
        _STATS.add("timeouts")
        return Verdict(False, "timeout")
    if status == "crash":
        _STATS.add("crashes")
        return Verdict(False, "crash")
    _STATS.add("symbolic")
    return Verdict(bool(result), "symbolic")


def verify(pred_text: str, gold, *, timeout: float | None = None) -> bool:
    """True when the final answer of `pred_text` equals `gold` (see `check`)."""
    return check(pred_text, gold, timeout=timeout).correct


parse_number = exact.parse_number


def start_in_background() -> None:
    """Start this process's verifier worker now (it imports sympy, a few seconds) without waiting,
    so the first symbolic check does not pay for it; ``RLAD_PL_VERIFIER_LAZY=1``: on first use.
    Called when a math task is built, never on import (an import must not start processes)."""
    if os.environ.get("RLAD_PL_VERIFIER_LAZY") == "1":
        return
    try:
        get_pool().warm_up(wait=False)
    except OSError:
        pass


__all__ = ["DEFAULT_TIMEOUT", "Verdict", "check", "parse_number", "reset_verifier_stats",
           "start_in_background", "verifier_stats", "verify", "warm_up"]
