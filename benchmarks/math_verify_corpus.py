"""The (completion, gold, expected) corpus of benchmarks/math_verify_bench.py.

Written for this project from the answer forms of MATH-style benchmarks: hand-written groups
(gold answer, forms that are equal, forms that are not) per answer kind, plus generated numeric
groups (fractions, radicals, polynomials, intervals, sets), each answer wrapped in one of several
completion styles real models write (`\\boxed{}`, "The final answer is $...$", a think block,
"**Answer:**", a bare answer). `python benchmarks/math_verify_corpus.py` rewrites
benchmarks/math_verify_corpus.jsonl (deterministic).
"""

from __future__ import annotations

import json
import random
from fractions import Fraction
from math import gcd
from pathlib import Path

OUT = Path(__file__).with_name("math_verify_corpus.jsonl")

# (kind, gold, [equal forms], [different forms])
GROUPS = [
    ("integer", "42", ["42", "42.0", "+42", "42."], ["43", "-42", "4.2"]),
    ("integer", "1000000", ["10^6", "1,000,000", "1{,}000{,}000", "1\\,000\\,000"],
     ["100000", "10^7"]),
    ("integer", "-7", ["-7", "- 7", "(-7)"], ["7"]),
    ("fraction", "\\frac{3}{4}", ["3/4", "\\dfrac34", "0.75", "\\tfrac{3}{4}", "\\frac{6}{8}"],
     ["\\frac{4}{3}", "0.7", "3/5"]),
    ("fraction", "-\\frac{1}{2}", ["\\frac{-1}{2}", "-0.5", "-1/2", "\\frac{1}{-2}"],
     ["\\frac{1}{2}", "-2"]),
    ("fraction", "\\frac{7}{2}", ["3.5", "3\\frac{1}{2}", "\\dfrac{7}{2}", "7/2"],
     ["\\frac{2}{7}", "3\\frac{1}{3}"]),
    ("mixed", "2\\frac{1}{2}", ["\\frac52", "2.5", "\\tfrac{5}{2}"], ["2\\frac{1}{3}", "\\frac12"]),
    ("radical", "2\\sqrt{2}", ["\\sqrt{8}", "2\\sqrt2", "\\sqrt{2}\\cdot 2", "2 \\sqrt{2}"],
     ["\\sqrt{2}", "4", "2\\sqrt{3}"]),
    ("radical", "\\frac{\\sqrt{3}}{2}", ["\\frac{1}{2}\\sqrt{3}", "\\sqrt{3}/2",
                                         "\\frac{3}{2\\sqrt{3}}", "\\dfrac{\\sqrt3}{2}"],
     ["\\frac{\\sqrt{2}}{2}", "\\frac{3}{2}"]),
    ("radical", "3\\sqrt{5}", ["\\sqrt{45}", "3 \\sqrt 5"], ["5\\sqrt{3}", "\\sqrt{15}"]),
    ("radical", "\\sqrt[3]{2}", ["2^{1/3}", "2^{\\frac{1}{3}}"], ["\\sqrt{2}", "2^{1/2}"]),
    ("radical", "5+2\\sqrt{6}", ["(\\sqrt{2}+\\sqrt{3})^2", "2\\sqrt{6}+5"], ["5+\\sqrt{6}"]),
    ("radical", "\\frac{\\sqrt{2}}{2}", ["\\frac{1}{\\sqrt{2}}", "\\frac{1}{\\sqrt 2}",
                                         "\\sqrt{\\frac{1}{2}}"], ["\\sqrt{2}"]),
    ("radical", "1+\\sqrt{2}", ["\\sqrt{3+2\\sqrt{2}}", "\\sqrt2+1"], ["1-\\sqrt2"]),
    ("pi", "4\\pi", ["4 \\pi", "\\pi \\cdot 4", "4\\cdot\\pi"], ["4", "16\\pi", "\\frac{\\pi}{4}"]),
    ("pi", "\\frac{\\pi}{3}", ["\\pi/3", "\\frac{1}{3}\\pi", "\\dfrac{\\pi}{3}"],
     ["\\frac{\\pi}{6}", "3\\pi"]),
    ("pi", "16\\pi", ["16 \\pi"], ["16\\pi^2", "8\\pi"]),
    ("pi", "\\frac{125\\pi}{6}", ["\\frac{125}{6}\\pi", "125\\pi/6"], ["\\frac{125\\pi}{3}"]),
    ("e", "e^2", ["e^{2}", "\\exp(2)", "e\\cdot e"], ["2e", "e^3"]),
    ("complex", "3+4i", ["4i+3", "3 + 4i", "3+4 i"], ["3-4i", "4+3i"]),
    ("complex", "-1-i", ["-(1+i)", "-i-1"], ["1+i", "-1+i"]),
    ("complex", "\\frac{1}{2}-\\frac{\\sqrt{3}}{2}i", ["\\frac{1-i\\sqrt{3}}{2}",
                                                       "0.5-\\frac{\\sqrt3}{2}i"],
     ["\\frac{1}{2}+\\frac{\\sqrt{3}}{2}i"]),
    ("complex", "i", ["\\sqrt{-1}"], ["-i", "1"]),
    ("polynomial", "x^2+2x+1", ["(x+1)^2", "1+2x+x^2", "x^2 + 2x + 1"], ["x^2+1", "(x-1)^2"]),
    ("polynomial", "2x-3", ["-3+2x", "2 x - 3"], ["3-2x", "2x+3"]),
    ("polynomial", "\\frac{x+1}{2}", ["\\frac{x}{2}+\\frac{1}{2}", "0.5x+0.5", "(x+1)/2"],
     ["\\frac{x-1}{2}", "x+\\frac12"]),
    ("polynomial", "x^2+x-6", ["(x-2)(x+3)", "(x+3)(x-2)"], ["(x+2)(x-3)"]),
    ("polynomial", "3a^2b", ["3ba^2", "3 a^2 b", "3b a^{2}"], ["3ab^2", "3a^2"]),
    ("polynomial", "\\frac{1}{x-1}", ["\\frac{1}{-1+x}", "(x-1)^{-1}"], ["\\frac{1}{x+1}"]),
    ("polynomial", "4x^3-12x", ["4x(x^2-3)", "-12x+4x^3"], ["4x^3-12"]),
    ("equation", "y = 2x+3", ["y=3+2x", "y = 2x + 3"], ["y=2x-3", "y=3x+2"]),
    ("equation", "x^2+y^2=25", ["y^2+x^2=25", "x^2+y^2-25=0"], ["x^2+y^2=5"]),
    ("equation", "5", ["x = 5", "x=5", "n = 5"], ["x = 6"]),
    ("equation", "y = -\\frac{1}{2}x + 4", ["y=4-\\frac{x}{2}", "y = -0.5x + 4"],
     ["y = \\frac12 x + 4"]),
    ("interval", "(-\\infty, 3]", ["(-\\infty,3]", "x \\le 3", "\\left(-\\infty, 3\\right]",
                                  "x \\in (-\\infty, 3]"], ["(-\\infty, 3)", "[3, \\infty)"]),
    ("interval", "[2, 5)", ["[2,5)", "\\left[2, 5\\right)", "2 \\le x < 5"],
     ["(2,5)", "[2,5]"]),
    ("interval", "(-\\infty,-1)\\cup(1,\\infty)", ["(1,\\infty)\\cup(-\\infty,-1)",
                                                   "(-\\infty, -1) \\cup (1, \\infty)"],
     ["(-\\infty,-1]\\cup[1,\\infty)", "(-1,1)"]),
    ("interval", "(0, \\infty)", ["(0,\\infty)", "x > 0"], ["[0, \\infty)"]),
    ("set", "\\{1, 2, 3\\}", ["\\{3,2,1\\}", "1, 2, 3", "3, 1, 2"], ["\\{1,2\\}", "\\{1,2,4\\}"]),
    ("set", "-2, 3", ["3, -2", "x=-2, x=3", "x = 3 \\text{ or } x = -2", "\\{-2, 3\\}"],
     ["-3, 2", "3"]),
    ("set", "1 \\pm \\sqrt{2}", ["1+\\sqrt{2}, 1-\\sqrt{2}", "1-\\sqrt2,1+\\sqrt2"],
     ["1+\\sqrt2", "2 \\pm \\sqrt{2}"]),
    ("tuple", "(2, 3)", ["(2,3)", "\\left(2, 3\\right)", "\\left( 2,3 \\right)"], ["(3, 2)",
                                                                                 "(2, 4)"]),
    ("tuple", "(1, -2, 3)", ["(1,-2,3)", "\\left(1, -2, 3\\right)"], ["(1, 2, 3)",
                                                                     "(3, -2, 1)"]),
    ("tuple", "\\left(\\frac{1}{2}, \\sqrt{3}\\right)", ["(0.5, \\sqrt3)",
                                                        "(\\frac12,\\sqrt{3})"],
     ["(\\sqrt3, \\frac12)"]),
    ("vector", "\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}",
     ["\\begin{pmatrix}1\\\\-2\\end{pmatrix}", "\\begin{bmatrix} 1 \\\\ -2 \\end{bmatrix}"],
     ["\\begin{pmatrix} -2 \\\\ 1 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"]),
    ("matrix", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
     ["\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{bmatrix} 1 & \\frac{4}{2} \\\\ 3 & 4 "
      "\\end{bmatrix}"], ["\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}"]),
    ("vector", "\\begin{pmatrix} \\frac{1}{3} \\\\ \\frac{2}{3} \\\\ 0 \\end{pmatrix}",
     ["\\begin{pmatrix} 1/3 \\\\ 2/3 \\\\ 0 \\end{pmatrix}"],
     ["\\begin{pmatrix} \\frac{1}{3} \\\\ \\frac{1}{3} \\\\ 0 \\end{pmatrix}"]),
    ("percent", "25\\%", ["25", "25 \\%", "25%"], ["20\\%", "2.5"]),
    ("degrees", "30^\\circ", ["30", "30^{\\circ}", "30 degrees", "30\u00b0"],
     ["60^\\circ", "3"]),
    ("units", "5\\text{ cm}", ["5", "5 cm", "5\\,\\text{cm}", "5 \\mbox{ cm}"], ["6 cm", "50"]),
    ("units", "12", ["12 \\text{ inches}", "12\\text{ square units}", "12 \\text{cm}^2"],
     ["13 \\text{ inches}"]),
    ("units", "\\$18.90", ["18.90", "18.9", "\\$18.90", "\\$ 18.9"], ["18.80", "1890"]),
    ("choice", "\\text{(C)}", ["C", "(C)", "\\textbf{(C)}", "\\text{C}"], ["B", "(D)"]),
    ("choice", "B", ["\\text{(B)}", "(B)", "\\mathrm{(B)}"], ["A", "\\text{(E)}"]),
    ("scientific", "3.2 \\times 10^{5}", ["320000", "3.2e5", "3.2\\cdot10^5", "320{,}000"],
     ["3.2 \\times 10^4", "32000"]),
    ("decimal", "0.5", ["\\frac12", ".5", "1/2"], ["0.05", "5"]),
    ("decimal", "\\frac{1}{3}", ["0.\\overline{3}", "\\frac{2}{6}", "0.3333333"],
     ["0.33", "0.3"]),
    ("decimal", "2.25", ["\\frac{9}{4}", "2\\frac14", "2.250"], ["2.2", "2.52"]),
    ("text", "\\text{Monday}", ["Monday", "\\text{Monday}", "\\textbf{Monday}"],
     ["Tuesday"]),
    ("text", "\\text{odd}", ["odd", "\\text{odd}"], ["even"]),
    ("noise", "\\frac{1}{2}", ["\\displaystyle \\frac{1}{2}", "\\left(\\frac{1}{2}\\right)",
                               "\\!\\frac{1}{2}", "{\\frac{1}{2}}"], ["\\frac{1}{3}"]),
    ("log", "3", ["\\log_2 8", "\\log_{2}8", "\\log_3 27"], ["\\log_2 4"]),
    ("log", "3\\ln 2", ["\\ln 8", "\\ln(8)"], ["\\ln 6"]),
    ("trig", "\\frac{\\sqrt{2}}{2}", ["\\sin 45^\\circ", "\\cos\\frac{\\pi}{4}"],
     ["\\sin 30^\\circ"]),
    ("counting", "15", ["\\binom{6}{2}", "\\dbinom{6}{2}", "\\frac{6!}{2!4!}"], ["\\binom{6}{3}"]),
    ("counting", "120", ["5!", "5 \\cdot 4 \\cdot 3 \\cdot 2"], ["4!"]),
    ("abs", "|x-1|", ["|1-x|", "\\left|x-1\\right|"], ["|x+1|", "x-1"]),
    ("infinity", "\\infty", ["\\infty", "+\\infty"], ["-\\infty", "0"]),
    ("exponent", "2^{10}", ["1024", "2^10", "4^5"], ["2^9", "20"]),
    ("exponent", "x^{-2}", ["\\frac{1}{x^2}", "1/x^2"], ["-x^2", "x^2"]),
    ("base", "1011_2", ["1011_{2}"], ["1011_3", "1101_2"]),
    ("trig", "\\frac{\\pi}{4}", ["\\tan^{-1} 1", "\\arctan 1"], ["\\tan 1", "\\frac{\\pi}{2}"]),
    ("trig", "\\cos 2\\theta", ["\\cos^2\\theta - \\sin^2\\theta", "1-2\\sin^2\\theta"],
     ["2\\cos\\theta", "\\sin 2\\theta"]),
    ("function", "f(x) = 3x - 1", ["y = 3x - 1", "3x-1", "f(x)=-1+3x"], ["f(x) = 3x + 1"]),
    ("choice", "\\textbf{(D) }\\frac{1}{3}", ["D", "(D)", "\\frac13"], ["C", "\\frac14"]),
    ("set", "\\{2, 4\\}", ["\\{4, 2, 4\\}", "4, 2"], ["\\{2, 4, 6\\}"]),
    ("radical", "-2", ["\\sqrt[3]{-8}", "-\\sqrt{4}"], ["\\sqrt[3]{8}"]),
    ("money", "\\$1,\\!250", ["1250", "\\$1{,}250.00", "1,250"], ["125", "\\$1,205"]),
]

WRAPPERS = [
    "\\boxed{{{a}}}",
    "We simplify step by step and obtain the result. Therefore, the final answer is "
    "$\\boxed{{{a}}}$.",
    "Final Answer: The final answer is ${a}$. I hope it is correct.",
    "<think>\nLet me work this out carefully. First compute the pieces, 2 + 3 = 5, then "
    "combine.\n</think>\n\nThe answer is $\\boxed{{{a}}}$.",
    "Putting everything together,\n\\[\n\\boxed{{{a}}}\n\\]",
    "**Answer:** ${a}$",
    "Solving gives $t = 1$ first, and then the requested quantity is\n\n$$\\boxed{{{a}}}$$",
    "The answer is ${a}$.",
]


def _frac(p: int, q: int) -> str:
    return f"-\\frac{{{-p}}}{{{q}}}" if p < 0 else f"\\frac{{{p}}}{{{q}}}"


def generated(rng: random.Random) -> list[tuple[str, str, str, bool]]:
    out = []
    for _ in range(20):  # fractions
        q = rng.randint(2, 30)
        p = rng.choice([x for x in range(1, 60) if gcd(x, q) == 1])
        k = rng.randint(2, 5)
        gold = _frac(p, q)
        out.append(("gen-fraction", gold, f"\\dfrac{{{k * p}}}{{{k * q}}}", True))
        out.append(("gen-fraction", gold, f"{p}/{q}", True))
        out.append(("gen-fraction", gold, _frac(p + 1, q), False))
        value = Fraction(p, q)
        if 10 ** 6 % value.denominator == 0:
            out.append(("gen-fraction", gold, str(float(value)), True))
    for _ in range(15):  # radicals a sqrt(b), b square-free
        a = rng.randint(2, 9)
        b = rng.choice([2, 3, 5, 6, 7, 10, 11, 13, 14, 15])
        gold = f"{a}\\sqrt{{{b}}}"
        out.append(("gen-radical", gold, f"\\sqrt{{{a * a * b}}}", True))
        out.append(("gen-radical", gold, f"\\sqrt{{{a * b}}}", False))
    for _ in range(15):  # factored vs expanded quadratics
        r, s = rng.randint(-9, 9), rng.randint(-9, 9)
        if r == 0 or s == 0 or r == s:
            continue
        lin, const = r + s, r * s

        def term(c, var=""):
            sign = "+" if c >= 0 else "-"
            mag = abs(c)
            return f" {sign} {'' if mag == 1 and var else mag}{var}"
        expanded = "x^2" + (term(lin, "x") if lin else "") + term(const)
        factored = f"(x{term(r)})(x{term(s)})".replace(" ", "")
        wrong = f"(x{term(-r)})(x{term(s)})".replace(" ", "")
        out.append(("gen-polynomial", expanded, factored, True))
        out.append(("gen-polynomial", expanded, wrong, False))
    for _ in range(10):  # intervals
        a, b = sorted(rng.sample(range(-20, 20), 2))
        lc, rc = rng.choice("[("), rng.choice("])")
        gold = f"{lc}{a}, {b}{rc}"
        out.append(("gen-interval", gold, f"\\left{lc}{a},{b}\\right{rc}", True))
        flip = {"[": "(", "(": "["}[lc]
        out.append(("gen-interval", gold, f"{flip}{a},{b}{rc}", False))
    for _ in range(10):  # sets, any order
        items = rng.sample(range(-15, 16), rng.randint(2, 4))
        gold = "\\{" + ", ".join(map(str, items)) + "\\}"
        shuffled = items[:]
        rng.shuffle(shuffled)
        out.append(("gen-set", gold, ", ".join(map(str, shuffled)), True))
        changed = shuffled[:]
        changed[0] += 1 if changed[0] + 1 not in items else 30
        out.append(("gen-set", gold, "\\{" + ",".join(map(str, changed)) + "\\}", False))
    for _ in range(10):  # big integers with separators
        n = rng.randint(10 ** 4, 10 ** 8)
        out.append(("gen-integer", str(n), f"{n:,}", True))
        out.append(("gen-integer", str(n), f"{n:,}".replace(",", "{,}"), True))
        out.append(("gen-integer", str(n), str(n + rng.randint(1, 9)), False))
    return out


def build() -> list[dict]:
    rng = random.Random(17)
    pairs = []
    for kind, gold, same, different in GROUPS:
        pairs += [(kind, gold, p, True) for p in same]
        pairs += [(kind, gold, p, False) for p in different]
    pairs += generated(rng)
    records = []
    for i, (kind, gold, pred, expected) in enumerate(pairs):
        wrapper = WRAPPERS[i % len(WRAPPERS)]
        records.append({"kind": kind, "gold": gold, "completion": wrapper.format(a=pred),
                        "answer": pred, "expected": expected})
    return records


if __name__ == "__main__":
    records = build()
    with open(OUT, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(records)} pairs ({sum(r['expected'] for r in records)} equal) -> {OUT}")
