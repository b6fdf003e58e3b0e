"""Answer equivalence per answer kind: forms that must match and forms that must not."""

import pytest

from rlad_pl.tasks.math import check, verify, warm_up


@pytest.fixture(scope="module", autouse=True)
def _worker():
    assert warm_up()


# (gold, [equal answers], [different answers]) per kind
KINDS = {
    "radicals": ("2\\sqrt{2}", ["\\sqrt{8}", "2\\sqrt2", "\\sqrt{2} \\cdot 2", "2^{3/2}"],
                 ["\\sqrt{2}", "2\\sqrt{3}", "4"]),
    "roots": ("\\sqrt[3]{16}", ["2\\sqrt[3]{2}", "16^{1/3}"], ["\\sqrt{16}", "2"]),
    "nested radicals": ("1+\\sqrt{2}", ["\\sqrt{3+2\\sqrt{2}}"], ["\\sqrt{3+\\sqrt{2}}"]),
    "pi": ("\\frac{\\pi}{4}", ["\\pi/4", "0.25\\pi", "\\frac{1}{4}\\pi"],
           ["\\frac{\\pi}{2}", "4\\pi"]),
    "e": ("e^{-1}", ["\\frac{1}{e}", "1/e"], ["-e", "e"]),
    "i": ("2-3i", ["-3i+2", "2 - 3 i"], ["2+3i", "3-2i"]),
    "polynomials": ("x^2-5x+6", ["(x-2)(x-3)", "6-5x+x^2"], ["(x+2)(x+3)", "x^2-5x"]),
    "variables": ("\\frac{a+b}{2}", ["\\frac{a}{2}+\\frac{b}{2}", "(b+a)/2"],
                  ["a+b", "\\frac{a-b}{2}"]),
    "implicit products": ("6xy", ["6yx", "2x \\cdot 3y", "x(6y)"], ["6x+y", "6x"]),
    "fractions": ("\\frac{5}{2}", ["\\dfrac{5}{2}", "\\tfrac52", "5/2", "2.5", "\\frac{10}{4}"],
                  ["\\frac{2}{5}", "2.4"]),
    "mixed numbers": ("\\tfrac{5}{2}", ["2\\frac{1}{2}", "2 \\frac12"], ["2\\frac{1}{3}", "1"]),
    "percent": ("40\\%", ["40", "40 \\%", "0.4"], ["4\\%", "400"]),
    "degrees": ("45^\\circ", ["45", "45^{\\circ}", "45 degrees", "45\u00b0"], ["90^\\circ", "50"]),
    "units": ("12\\text{ cm}^2", ["12", "12 \\text{ square cm}", "12\\,\\mbox{cm}^2"],
              ["13", "144"]),
    "text": ("\\text{Tuesday}", ["Tuesday", "\\textbf{Tuesday}"], ["Monday"]),
    "multiple choice": ("\\text{(D)}", ["D", "(D)", "\\textbf{(D) }", "\\text{D}"], ["C", "(E)"]),
    "choice with value": ("\\textbf{(B) }12", ["B", "(B)", "12"], ["C", "13"]),
    "equations": ("y = 3x - 2", ["y=-2+3x", "3x-2", "y - 3x + 2 = 0"], ["y = 3x + 2", "y=2x-3"]),
    "x = answer": ("7", ["x = 7", "n=7", "a = 7"], ["x = 8"]),
    "intervals": ("(-2, 5]", ["\\left(-2,5\\right]", "-2 < x \\le 5", "x \\in (-2, 5]"],
                  ["[-2, 5]", "(-2, 5)", "(-5, 2]"]),
    "infinity": ("[1, \\infty)", ["x \\ge 1", "[1,\\infty)"], ["(1, \\infty)", "(-\\infty, 1]"]),
    "unions": ("(-\\infty, 0) \\cup (2, \\infty)", ["(2,\\infty)\\cup(-\\infty,0)"],
               ["(-\\infty, 0] \\cup (2, \\infty)", "(0, 2)"]),
    "tuples": ("(1, -3)", ["(1,-3)", "\\left( 1, -3 \\right)"], ["(-3, 1)", "(1, 3)"]),
    "sets": ("\\{-1, 0, 4\\}", ["\\{4, -1, 0\\}", "0, 4, -1", "\\left\\{ -1,0,4 \\right\\}"],
             ["\\{-1, 0\\}", "\\{1, 0, 4\\}"]),
    "comma lists": ("2, -5", ["-5, 2", "x = 2 \\text{ or } x = -5", "x=-5, x=2"], ["2, 5", "2"]),
    "plus minus": ("3 \\pm \\sqrt{5}", ["3+\\sqrt5, 3-\\sqrt5"],
                   ["3+\\sqrt{5}", "-3 \\pm \\sqrt5"]),
    "vectors": ("\\begin{pmatrix} 2 \\\\ -1 \\end{pmatrix}",
                ["\\begin{bmatrix}2\\\\-1\\end{bmatrix}",
                 "\\begin{pmatrix} 4/2 \\\\ -1 \\end{pmatrix}"],
                ["\\begin{pmatrix} -1 \\\\ 2 \\end{pmatrix}",
                 "\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}"]),
    "matrices": ("\\begin{pmatrix} 1 & 0 \\\\ 2 & 1 \\end{pmatrix}",
                 ["\\begin{bmatrix} 1 & 0 \\\\ 2 & 1 \\end{bmatrix}"],
                 ["\\begin{pmatrix} 1 & 2 \\\\ 0 & 1 \\end{pmatrix}"]),
    "scientific notation": ("6.02 \\times 10^{23}", ["6.02e23", "602 \\times 10^{21}"],
                            ["6.02 \\times 10^{22}"]),
    "decimals": ("\\frac{2}{3}", ["0.\\overline{6}", "0.6666667"], ["0.67", "0.6"]),
    "thousands": ("1234567", ["1,234,567", "1{,}234{,}567"], ["1,234,568", "1234.567"]),
    "latex noise": ("\\frac{3}{7}", ["\\displaystyle\\frac{3}{7}", "\\left(\\frac{3}{7}\\right)",
                                     "$\\frac{3}{7}$", "\\!\\frac{3}{7}\\,"], ["\\frac{7}{3}"]),
    "logs": ("2", ["\\log_3 9", "\\log_{10} 100", "\\ln e^2"], ["\\log_2 9"]),
    "trig": ("\\frac{1}{2}", ["\\sin 30^\\circ", "\\cos\\frac{\\pi}{3}"], ["\\sin 60^\\circ"]),
    "counting": ("35", ["\\binom{7}{3}", "\\dbinom{7}{4}", "\\frac{7!}{3!4!}"], ["\\binom{7}{2}"]),
}


def _cases():
    for kind, (gold, same, different) in KINDS.items():
        for pred in same:
            yield pytest.param(pred, gold, True, id=f"{kind}: {pred} == {gold}")
        for pred in different:
            yield pytest.param(pred, gold, False, id=f"{kind}: {pred} != {gold}")


@pytest.mark.parametrize("pred, gold, expected", list(_cases()))
def test_equivalence(pred, gold, expected):
    assert verify(f"so the answer is $\\boxed{{{pred}}}$.", gold) is expected
    assert verify(pred, gold) is expected  # a bare answer


@pytest.mark.parametrize("completion, gold, expected", [
    ("<think>maybe \\boxed{3}</think>\n\nThe answer is $\\boxed{4}$.", "4", True),
    ("<think>so it is 4</think>\n\nThe answer is $\\boxed{3}$.", "4", False),
    ("Therefore, the final answer is $\\frac{1}{2}$. I hope it is correct.", "0.5", True),
    ("**Final Answer:** $x = -2$", "-2", True),
    ("The solutions are $x = 1$ and $x = 4$.", "1, 4", True),
    ("We get 12 cookies in total.", "12", True),
    ("Natalia sold 24 clips in May. #### 72", "72", True),
    ("<answer> \\boxed{7} </answer>", "7", True),
    ("The answer is (C).", "\\text{(C)}", True),
    ("no answer here", "5", False),
])
def test_extraction_from_completions(completion, gold, expected):
    assert verify(completion, gold) is expected


@pytest.mark.parametrize("gold", [
    "The answer is $\\boxed{\\frac{3}{4}}$ since ...",  # a MATH solution
    "3 / 4 of them ... #### 0.75",  # a GSM8K solution
])
def test_gold_from_solutions(gold):
    assert verify("\\boxed{\\dfrac34}", gold)


def test_verdict_status():
    assert check("\\boxed{7}", "7").status == "exact"
    verdict = check("\\boxed{x+1}", "1+x")
    assert (verdict.correct, verdict.status) == (True, "symbolic")
    assert check("", "7").status == "no_answer"


@pytest.mark.parametrize("pred, gold, expected", [
    # values far outside the float range still compare (no overflow to inf == inf)
    ("(1+\\sqrt{2})^{5000}", "1", False), ("(x+1)^{10000}", "x", False),
    ("(1+\\sqrt{2})^{50}", "(\\sqrt2+1)^{50}", True), ("(x+1)^{100}", "(1+x)^{100}", True),
    ("2^{5000}", "2^{4999}\\cdot 2", True), ("\\binom{10000}{5000}", "3", False),
    # more forms: numerals in a base, inverse trig, vulgar fractions, functions of 2\theta
    ("1011_{2}", "1011_2", True), ("1011_{2}", "1011_3", False),
    ("\\tan^{-1} 1", "\\frac{\\pi}{4}", True),
    ("\\cos^2\\theta-\\sin^2\\theta", "\\cos 2\\theta", True),
    ("\u00bd", "\\frac12", True), ("2\u00bd", "\\frac52", True), ("\u221a2", "\\sqrt2", True),
    ("314.159", "100\\pi", False), ("1.285714", "\\frac97", True), ("1.2857", "\\frac97", False),
])
def test_more_forms(pred, gold, expected):
    assert verify(f"\\boxed{{{pred}}}", gold) is expected


TRIG_IDENTITIES = [  # (answer, gold, equal): identities that need no simplification
    ("\\cos^2\\theta-\\sin^2\\theta", "\\cos 2\\theta", True),
    ("1-2\\sin^2\\phi", "\\cos 2\\phi", True),
    ("2\\sin x\\cos x", "\\sin 2x", True),
    ("\\sec^2 t", "1+\\tan^2 t", True),
    ("\\cos^2\\alpha+\\sin^2\\alpha", "\\cos 2\\alpha", False),
    ("\\sin x\\cos x", "\\sin 2x", False),
]


@pytest.mark.parametrize("pred, gold, expected", TRIG_IDENTITIES)
def test_trig_identities_without_assumption_queries(pred, gold, expected, monkeypatch):
    """Trig identities are compared by their values at random points; the comparison never asks
    sympy's assumption system about a symbolic expression (`is_infinite` of `cos^2 - sin^2`
    alone took ~25 ms and, with its randomised search, sometimes most of the 1 s limit on a
    loaded machine). Questions about plain numbers (evalf of `sec` at a point) are cheap."""
    import importlib

    from rlad_pl.tasks.math.symbolic import _value_of, scalar_equal

    assumptions = importlib.import_module("sympy.core.assumptions")
    a, b = _value_of(pred)[1], _value_of(gold)[1]
    asked = []
    real_ask = assumptions._ask
    monkeypatch.setattr(assumptions, "_ask", lambda fact, obj: (
        obj.free_symbols and asked.append((fact, obj))) or real_ask(fact, obj))
    assert scalar_equal(a, b) is expected
    assert asked == []
    monkeypatch.undo()
    assert verify(f"\\boxed{{{pred}}}", gold) is expected
