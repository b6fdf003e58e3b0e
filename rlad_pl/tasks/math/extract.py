"""Final-answer extraction from model text or gold solutions (string scanning only)."""

from __future__ import annotations

import re

from ..tags import answer_block

SCAN_CHARS = 4096  # the "last number" and "####" rules look at the tail only
_NUMBER = re.compile(r"-?[0-9][0-9,]*(?:\.[0-9]+)?|-?\.[0-9]+")


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), nested braces matched."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0 or text[start:i].rstrip() not in ("\\boxed", "\\fbox"):
        return None
    depth = 0
    for j in range(i, min(len(text), i + SCAN_CHARS)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j].strip()
    return None


def after_hashes(text: str) -> str | None:
    """GSM8K style: what follows the last `####`, up to the end of that line."""
    i = text.rfind("####")
    if i < 0:
        return None
    return text[i + 4:].split("\n", 1)[0].strip()[:SCAN_CHARS] or None


def last_number(text: str) -> str | None:
    """The last number in the tail of the text (commas kept: '1,234')."""
    found = _NUMBER.findall(text[-SCAN_CHARS:])
    return found[-1].rstrip(",") if found else None


def extract_answer(text: str) -> str | None:
    """The final answer of a text: `\\boxed{}` (inside the answer block if there is one), else the
    `<answer>` block, else `#### n`, else the last number; None when nothing is found."""
    if not isinstance(text, str) or not text:
        return None
    block = answer_block(text)
    if block is not None:
        return last_boxed(block) or block
    return last_boxed(text) or after_hashes(text) or last_number(text)


# ---------------------------------------------------------------- model completions
MAX_ANSWER_CHARS = 1000  # longer candidate answers are dropped
_PHRASE = re.compile(
    r"(?:final\s+answer|the\s+answer|answer)\s*(?:\*\*)?\s*(?:is|:|=|would\s+be|should\s+be)?"
    r"\s*(?:\*\*)?\s*:?\s*", re.IGNORECASE)
_MATH_SPAN = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<!\\)\$(.+?)(?<!\\)\$|\\\[(.+?)\\\]"
                        r"|\\\((.+?)\\\)", re.DOTALL)


def _after_think(text: str) -> str:
    """The part after the last `</think>` when it has content (the final response)."""
    i = text.rfind("</think>")
    if i >= 0:
        tail = text[i + len("</think>"):]
        if tail.strip():
            return tail
    return text


def _phrase_answer(tail: str) -> str | None:
    """`The answer is $\\frac12$.` / `**Final Answer:** 5` -> the text after the phrase."""
    found = None
    for m in _PHRASE.finditer(tail):
        found = m
    if found is None:
        return None
    rest = tail[found.end():]
    if not rest.strip():
        return None
    span = _MATH_SPAN.match(rest.lstrip())
    if span:
        return next(g for g in span.groups() if g is not None).strip()
    line = rest.split("\n", 1)[0]
    line = re.split(r"(?<![0-9])\.(?:\s|$)|\.\s", line, maxsplit=1)[0]
    return line.strip().strip("*").strip() or None


_JOINER = re.compile(r"\s*(?:,|;|and|or|,\s*and|,\s*or)?\s*", re.IGNORECASE)


def _last_math(tail: str) -> str | None:
    """The last `$...$` span; spans joined only by "and" / "or" / commas are one list answer
    (`$x = 2$ and $x = 3$` -> `x = 2, x = 3`)."""
    spans = list(_MATH_SPAN.finditer(tail))
    if not spans:
        return None
    chosen = [spans[-1]]
    for prev in reversed(spans[:-1]):
        if not _JOINER.fullmatch(tail[prev.end():chosen[0].start()]):
            break
        chosen.insert(0, prev)
    parts = [next(g for g in m.groups() if g is not None).strip() for m in chosen]
    return ", ".join(p for p in parts if p) or None


def answer_candidates(text: str, looks_like_math=None) -> list[str]:
    """Candidate final answers of a model completion, best first.

    A marker decides alone: the `<answer>` block (its `\\boxed{}` if any), else the last
    `\\boxed{}` / `\\fbox{}` of the final response (after `</think>`), else `#### x`. Without a
    marker: the whole text when `looks_like_math(text)` (a bare answer such as `x+1`), else
    the text after "the answer is" / "final answer:", the last `$...$` span, the last number.
    """
    if not isinstance(text, str) or not text.strip():
        return []
    block = answer_block(text)
    if block is not None:
        found = [last_boxed(block) or block]
    else:
        tail = _after_think(text)
        boxed = last_boxed(tail)
        hashes = None if boxed else after_hashes(tail)
        if boxed is not None or hashes is not None:
            found = [boxed if boxed is not None else hashes]
        else:
            stripped = tail.strip()
            if len(stripped) <= MAX_ANSWER_CHARS and looks_like_math is not None and \
                    looks_like_math(stripped):
                return [stripped]
            scan = tail[-SCAN_CHARS:]
            found = [_phrase_answer(scan), _last_math(scan), last_number(scan)]
            if len(stripped) <= 100:  # a bare word answer ("Tuesday")
                found.append(stripped)
            if tail is not text and not any(found):  # only the think block has an answer
                found.append(last_boxed(text))
    out = []
    for c in found:
        if c is not None and c.strip() and len(c) <= MAX_ANSWER_CHARS and c not in out:
            out.append(c.strip())
    return out
