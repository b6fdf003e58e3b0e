"""A bounded parser for final answers written in LaTeX or plain text.

`parse_answer(text)` turns an answer string into a small tree of tuples (no sympy involved, no
evaluation): numbers are kept as `Fraction`s, everything else as nodes such as
`("add", [..])`, `("pow", base, exp)`, `("func", "sin", [arg])`, `("tuple", [..])`,
`("interval", left_closed, a, b, right_closed)`, `("matrix", rows)`, `("eq", lhs, rhs)`,
`("text", words)`. Every stage is capped (characters, tokens, nodes, nesting depth, digits per
literal) and over-cap input raises `Reject`, so parsing is linear-ish in a short string and
never runs model text. `rlad_pl.tasks.math.symbolic` builds sympy objects from the tree.

Grammar (loosely): answer := item ("," item)*; item := expr (relop expr)*; expr := term
(("+"|"-"|"\\pm") term)*; term := unary (("*"|"/"|"\\cdot"|"\\times"|"\\div")? unary)* (a
missing operator is a product: `2x`, `3\\sqrt{2}`, `(x+1)(x-1)`); unary := "-" unary | power;
power := postfix ("^" exponent)?; atoms: numbers (decimals, `1.5e3`, `0.\\overline{3}`),
letters with subscripts, `\\pi`, `e`, `i`, `\\infty`, `\\frac`, `\\sqrt[n]{}`, `\\binom`,
functions (`\\sin`, `\\log_2`, `\\ln`, ...), `|x|`, floor/ceil, groups, tuples, intervals,
`\\{..\\}` sets, and `pmatrix`/`bmatrix`/`matrix` environments.
"""

from __future__ import annotations

import re
from fractions import Fraction

MAX_CHARS = 1000  # answer strings longer than this are not parsed
MAX_TOKENS = 400
MAX_NODES = 400
MAX_DEPTH = 40
MAX_DIGITS = 60  # digits of one number literal
MAX_SCI_EXPONENT = 400  # |k| in 1.5e{k}

FUNCTIONS = {"sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh",
             "cosh", "tanh", "exp", "ln", "log", "lg"}
GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta",
         "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau",
         "upsilon", "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda",
         "Xi", "Sigma", "Phi", "Psi", "Omega"}
TEXT_COMMANDS = ("text", "textrm", "textbf", "textit", "textsf", "texttt", "mathrm", "mathbf",
                 "mathit", "mathsf", "mbox", "hbox", "textnormal", "boldsymbol", "mathbb")
MATRIX_ENVS = ("pmatrix", "bmatrix", "Bmatrix", "vmatrix", "Vmatrix", "matrix", "smallmatrix",
               "array")

# Unicode that models write for math; other non-ASCII characters do not parse.
_UNICODE = {**{c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)},
            **{ord(k): v for k, v in {
                "\u2212": "-", "\u2013": "-", "\u00d7": "\\times ", "\u00f7": "\\div ",
                "\u22c5": "\\cdot ", "\u00b7": "\\cdot ", "\u3000": " ", "\u00a0": " ",
                "\u03c0": "\\pi ", "\u221e": "\\infty ", "\u221a": "\\sqrt", "\u2264": "\\le ",
                "\u2265": "\\ge ", "\u2260": "\\ne ", "\u00b0": "^\\circ ", "\u222a": "\\cup ",
                "\u2208": "\\in ", "\u00b1": "\\pm ", "\u2009": " ", "\u200b": "",
                "\ufeff": "", "\u2061": "", "\u00bd": "\\frac{1}{2}", "\u2153": "\\frac{1}{3}",
                "\u2154": "\\frac{2}{3}", "\u00bc": "\\frac{1}{4}", "\u00be": "\\frac{3}{4}",
                "\u2155": "\\frac{1}{5}", "\u2159": "\\frac{1}{6}", "\u215b": "\\frac{1}{8}",
                "\u00b2": "^{2}", "\u00b3": "^{3}"}.items()}}

_SPACING = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg|Bigg)"
                      r"(?![a-zA-Z])|\\(?:displaystyle|textstyle|scriptstyle|limits|nolimits"
                      r"|quad|qquad|hfill|mathstrut|strut|phantom\{[^{}]*\}|hspace\*?\{[^{}]*\}"
                      r"|vspace\*?\{[^{}]*\}|noindent)(?![a-zA-Z])|\\[,;:! ]|~")
_REALS = re.compile(r"\\mathbb\s*\{?\s*R\s*\}?")
_TEXT = re.compile(r"\\(?:" + "|".join(TEXT_COMMANDS) + r")\s*\{([^{}]*)\}")
_THOUSANDS = re.compile(r"(?<![0-9.])([0-9]{1,3})((?:,[0-9]{3})+)(?![0-9])")
_SPACED_THOUSANDS = re.compile(r"(?<![0-9.])([0-9]{1,3})((?: [0-9]{3})+)(?![0-9.])")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\degree(?![a-zA-Z])|\^\s*\{\s*o\s*\}")
_UNIT_WORDS = {
    "cm", "mm", "km", "m", "meter", "meters", "metre", "metres", "centimeter", "centimeters",
    "kilometer", "kilometers", "inch", "inches", "in", "ft", "foot", "feet", "yard", "yards",
    "mile", "miles", "mi", "unit", "units", "sq", "square", "cubic", "degree", "degrees", "deg",
    "radian", "radians", "rad", "dollar", "dollars", "cent", "cents", "hour", "hours", "hr",
    "hrs", "minute", "minutes", "min", "second", "seconds", "sec", "s", "day", "days", "week",
    "weeks", "year", "years", "month", "months", "mph", "kg", "g", "gram", "grams", "pound",
    "pounds", "lb", "lbs", "ounce", "ounces", "oz", "liter", "liters", "l", "ml", "gallon",
    "gallons", "people", "students", "ways", "times", "percent", "point", "points", "per",
    "mile/hour", "km/h", "m/s", "cm^2", "cm^3", "m^2", "m^3", "ft^2", "in^2", "sq.", "units^2",
    "inches^2", "feet^2", "meters^2", "base", "numbers", "integers", "solutions", "values",
    "digits", "terms", "pairs", "coins", "marbles", "apples", "books", "boxes", "items",
    "tiles", "cookies", "miles/hour"}
_RELOPS = {"=": "=", "<": "<", ">": ">", "\\le": "<=", "\\leq": "<=", "\\leqslant": "<=",
           "\\ge": ">=", "\\geq": ">=", "\\geqslant": ">=", "\\lt": "<", "\\gt": ">",
           "\\ne": "!=", "\\neq": "!=", "<=": "<=", ">=": ">=", "\\approx": "=", "\\equiv": "="}

_TOKEN = re.compile(
    r"(?P<num>[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+)"
    r"|(?P<cmd>\\[a-zA-Z]+|\\[{}|%$#&])"
    r"|(?P<rowsep>\\\\)"
    r"|(?P<op><=|>=|\*\*|[-+*/^_()\[\]{},;=<>!|&'%:])"
    r"|(?P<letter>[a-zA-Z])")


class Reject(Exception):
    """The answer is outside the grammar or over a cap."""


def clean(text: str) -> str:
    """Unicode to ASCII/LaTeX, drop layout commands, `$`, thousands separators, trailing
    punctuation; keep the math."""
    text = text.translate(_UNICODE).strip()
    if len(text) > MAX_CHARS:
        raise Reject("answer too long")
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace(
        "\\cfrac", "\\frac").replace("\\dbinom", "\\binom").replace("\\tbinom", "\\binom")
    text = text.replace("\x01", "").replace("\\\\", "\x01")  # protect row separators
    text = text.replace("\\left.", " ").replace("\\right.", " ").replace("\\!", "")
    text = _SPACING.sub(" ", text).replace("\x01", " \\\\ ")
    text = text.replace("\\$", " ").replace("$", " ").replace("\\(", " ").replace("\\)", " ")
    text = text.replace("\\[", " ").replace("\\]", " ").replace("\\%", "%")
    text = text.replace("{,}", ",").replace("\\{,\\}", ",")
    text = re.sub(r"\\(?:mathrm|text|operatorname)\s*\{\s*(sin|cos|tan|log|ln|exp)\s*\}",
                  r"\\\1 ", text)
    text = _REALS.sub(lambda m: " (-\\infty, \\infty) ", text)
    text = text.replace("\\lvert", "|").replace("\\rvert", "|").replace("\\vert", "|")
    text = text.replace("\\mid", "|").replace("\\lbrace", "\\{").replace("\\rbrace", "\\}")
    text = text.replace("\\langle", "(").replace("\\rangle", ")")
    text = text.replace("\\lbrack", "[").replace("\\rbrack", "]")
    text = _THOUSANDS.sub(lambda m: m.group(1) + m.group(2).replace(",", ""), text)
    text = _SPACED_THOUSANDS.sub(lambda m: m.group(1) + m.group(2).replace(" ", ""), text)
    text = text.strip().rstrip(".").strip()
    return text


def _text_groups(text: str) -> str:
    """Resolve `\\text{...}`-like groups: connecting words become commas, others are unwrapped
    (units are dropped later)."""
    def repl(m: re.Match) -> str:
        inner = m.group(1).strip()
        if inner.lower() in ("or", "and", ",", "or ,", "and ,"):
            return " , "
        return " " + inner + " "
    for _ in range(3):  # nested \text{\textbf{..}}
        new = _TEXT.sub(repl, text)
        if new == text:
            break
        text = new
    return text


_TRAILING_WORDS = re.compile(r"(?<=[0-9)}%])\s+((?:[A-Za-z]{2,}[./]?\s*)+)(\^\s*\{?[23]\}?)?\s*$")


def strip_units(text: str) -> str:
    """Drop unit words (and a `^2` after them) at the end of an answer: `5 cm^2` -> `5`,
    `12 pencils` -> `12`."""
    m = _TRAILING_WORDS.search(text)
    words = re.findall(r"[A-Za-z]+", m.group(1)) if m else []
    if words and all(w.lower() in _UNIT_WORDS or len(w) >= 3 for w in words) and not any(
            w.lower() in FUNCTIONS or w.lower() in ("pi", "sqrt", "infty", "or", "and")
            for w in words):
        head = text[:m.start()].rstrip()
        if head and not head.endswith(("\\", "^", "_")) and not re.search(r"\\[A-Za-z]*$", head):
            return head
    for _ in range(4):
        m = re.search(r"(?:^|(?<=[\s0-9)}]))([A-Za-z][A-Za-z./]*)\s*(\^\s*\{?[23]\}?)?\s*$", text)
        if not m or m.start(1) == 0:
            return text
        word = m.group(1).lower().rstrip(".")
        head = text[:m.start(1)].rstrip()
        if word not in _UNIT_WORDS or not head or head.endswith(
                ("\\", "^", "_", "+", "-", "*", "/", "=", "(", "[", ",", "{")):
            return text
        if len(word) == 1 and not text[m.start(1) - 1].isspace():
            return text  # "5m" could be a product with a variable m
        text = head
    return text


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos, n = 0, len(text)
    while pos < n:
        c = text[pos]
        if c.isspace():
            pos += 1
            continue
        m = _TOKEN.match(text, pos)
        if m is None:
            raise Reject(f"unexpected character {c!r}")
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "num" and sum(ch.isdigit() for ch in value) > MAX_DIGITS:
            raise Reject("number literal too long")
        tokens.append((kind, value))
        pos = m.end()
        if len(tokens) > MAX_TOKENS:
            raise Reject("too many tokens")
    return tokens


def _number(literal: str) -> Fraction:
    mantissa, _, exponent = literal.lower().partition("e")
    if exponent and abs(int(exponent)) > MAX_SCI_EXPONENT:
        raise Reject("exponent of scientific notation too large")
    if mantissa.endswith("."):
        mantissa = mantissa[:-1]
    value = Fraction(mantissa)
    if exponent:
        value *= Fraction(10) ** int(exponent)
    return value


def _is_int_num(node) -> bool:
    return node[0] == "num" and node[2] == "int" and node[1].denominator == 1


class Parser:
    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens = tokens
        self.i = 0
        self.depth = 0
        self.nodes = 0
        self.abs_depth = 0

    # -- token helpers --------------------------------------------------------------------
    def peek(self, k: int = 0) -> tuple[str, str] | None:
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else None

    def peek_value(self, k: int = 0) -> str | None:
        t = self.peek(k)
        return t[1] if t else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        t = self.peek()
        if t is None or (value is not None and t[1] != value):
            raise Reject(f"expected {value or 'more input'}")
        self.i += 1
        return t

    def accept(self, value: str) -> bool:
        if self.peek_value() == value:
            self.i += 1
            return True
        return False

    def node(self, *parts):
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise Reject("expression too large")
        return parts

    def enter(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Reject("nested too deeply")

    def leave(self):
        self.depth -= 1

    # -- grammar --------------------------------------------------------------------------
    def parse(self):
        items = self.sequence(stop=())
        if self.peek() is not None:
            raise Reject(f"trailing {self.peek_value()!r}")
        return items[0] if len(items) == 1 else self.node("list", items)

    def sequence(self, stop: tuple[str, ...]) -> list:
        items = [self.item()]
        while self.peek_value() in (",", ";"):
            self.take()
            if self.peek() is None or self.peek_value() in stop:
                break  # trailing comma
            items.append(self.item())
        return items

    def item(self):
        left = self.expr()
        ops, exprs = [], [left]
        while self.peek_value() in _RELOPS or self.peek_value() == "\\in":
            op = self.take()[1]
            if op == "\\in":
                ops.append("in")
                exprs.append(self.set_like())
                continue
            ops.append(_RELOPS[op])
            exprs.append(self.expr())
        if not ops:
            return left
        if ops == ["="] or all(o == "=" for o in ops):
            out = exprs[-1]
            for lhs in reversed(exprs[:-1]):
                out = self.node("eq", lhs, out)
            return out
        return self.node("rel", ops, exprs)

    def set_like(self):
        """Right side of `x \\in ...`: an interval, union or set."""
        return self.expr()

    def expr(self):
        self.enter()
        terms = []
        sign = 1
        if self.peek_value() in ("+", "-"):
            sign = -1 if self.take()[1] == "-" else 1
        elif self.peek_value() in ("\\pm", "\\mp"):
            self.take()
            first = self.term()
            terms.append(self.node("pm", self.node("num", Fraction(0), "other"), first))
            sign = None
        if sign is not None:
            first = self.term()
            terms.append(first if sign == 1 else self.node("neg", first))
        while True:
            v = self.peek_value()
            if v in ("+", "-"):
                self.take()
                t = self.term()
                terms.append(t if v == "+" else self.node("neg", t))
            elif v in ("\\pm", "\\mp"):
                self.take()
                t = self.term()
                terms.append(self.node("pm", self.node("num", Fraction(0), "other"), t))
            elif v in ("\\cup", "\\cap", "\\setminus", "U"):
                if v == "U" and not self._looks_like_union():
                    break
                self.take()
                terms = [self.node("union" if v in ("\\cup", "U") else v[1:],
                                   terms[0] if len(terms) == 1 else self.node("add", terms),
                                   self.term())]
            else:
                break
        self.leave()
        return terms[0] if len(terms) == 1 else self.node("add", terms)

    def _looks_like_union(self) -> bool:
        nxt = self.peek_value(1)
        return nxt in ("(", "[", "\\{")

    _EXPLICIT = ("*", "\\cdot", "\\times", "/", "\\div", "\\ast")

    def term(self):
        self.enter()
        factors = [self.unary()]
        while True:
            v = self.peek_value()
            if v in self._EXPLICIT:
                self.take()
                rhs = self.unary()
                factors.append(self.node("div", self.node("num", Fraction(1), "other"), rhs)
                               if v in ("/", "\\div") else rhs)
            elif self._starts_atom():
                if self.peek()[0] == "num" and self.tokens[self.i - 1][0] == "num":
                    raise Reject("two numbers in a row")  # "2 3" is not 6
                factors.append(self.power())
            else:
                break
        self.leave()
        return factors[0] if len(factors) == 1 else self.node("mul", factors)

    def _starts_atom(self) -> bool:
        t = self.peek()
        if t is None:
            return False
        kind, v = t
        if kind in ("num", "letter", "word"):
            return not (kind == "letter" and v == "U" and self._looks_like_union())
        if kind == "cmd":
            return v not in _RELOPS and v not in self._EXPLICIT and v not in (
                "\\pm", "\\mp", "\\cup", "\\cap", "\\setminus", "\\in", "\\end", "\\}",
                "\\rfloor", "\\rceil", "\\right", "\\&", "\\|")
        if v == "|":
            return self.abs_depth == 0
        return v in ("(", "[", "{")

    def unary(self):
        v = self.peek_value()
        if v in ("-", "+"):
            self.enter()
            self.take()
            inner = self.unary()
            self.leave()
            return self.node("neg", inner) if v == "-" else inner
        return self.power()

    def power(self):
        base = self.postfix(self.atom())
        if self.peek_value() in ("^", "**"):
            self.take()
            if self.peek_value() == "\\circ":
                self.take()
                return self.postfix(self.node("deg", base))
            self.enter()
            exponent = self.exponent()
            self.leave()
            return self.postfix(self.node("pow", base, exponent))
        return base

    def exponent(self):
        v = self.peek_value()
        if v == "{":
            return self.group()
        if v in ("-", "+"):
            self.take()
            inner = self.exponent()
            return self.node("neg", inner) if v == "-" else inner
        return self.postfix(self.atom())

    def postfix(self, node):
        while True:
            v = self.peek_value()
            if v == "!":
                self.take()
                node = self.node("fact", node)
            elif v == "%":
                self.take()
                node = self.node("pct", node)
            elif v == "'":
                raise Reject("primes are not supported")
            else:
                return node

    def group(self):
        """`{ ... }` as one expression (a comma list inside becomes a list)."""
        self.take("{")
        self.enter()
        if self.peek_value() == "}":
            raise Reject("empty group")
        items = self.sequence(stop=("}",))
        self.take("}")
        self.leave()
        return items[0] if len(items) == 1 else self.node("list", items)

    def arg(self):
        """A command argument: `{...}`, or a single digit / letter / command (`\\frac12`)."""
        t = self.peek()
        if t is None:
            raise Reject("missing argument")
        kind, v = t
        if v == "{":
            return self.group()
        if kind == "num":
            self.take()
            if len(v) > 1:  # \frac12: first digit only, the rest goes back
                self.tokens.insert(self.i, ("num", v[1:]))
                v = v[0]
            if not v.isdigit():
                raise Reject("bad argument")
            return self.node("num", Fraction(int(v)), "int")
        if kind == "letter" or kind == "cmd":
            return self.atom()
        raise Reject(f"bad argument {v!r}")

    def atom(self):
        t = self.peek()
        if t is None:
            raise Reject("unexpected end")
        kind, v = t
        if kind == "num":
            self.take()
            kind = "dec" if ("." in v or "e" in v.lower()) else "int"
            value = self.node("num", _number(v), kind)
            if self.peek_value() == "\\overline" and "." in v:
                self.take()
                rep = self.arg()
                if not _is_int_num(rep):
                    raise Reject("bad repeating decimal")
                digits = str(rep[1].numerator)
                frac = v.split(".", 1)[1]
                value = self.node("num", _repeating(v.split(".", 1)[0], frac, digits), "other")
            if self.peek_value() == "_" and kind == "int":  # 1011_2: a numeral in a base
                self.take()
                base = self.arg()
                if not _is_int_num(base):
                    raise Reject("bad base")
                return self.node("sym", f"{v}_{base[1].numerator}")
            if _is_int_num(value) and self.peek_value() == "\\frac":
                mixed = self._mixed(value)
                if mixed is not None:
                    return mixed
            return value
        if kind == "letter":
            self.take()
            return self._subscripted(v)
        if kind == "word":
            raise Reject(f"word {v[:20]!r}")
        if kind == "cmd":
            return self.command()
        if v == "(" or v == "[":
            return self.bracketed()
        if v == "{":
            return self.group()
        if v == "|":
            self.take()
            self.enter()
            self.abs_depth += 1
            inner = self.expr()
            self.abs_depth -= 1
            self.take("|")
            self.leave()
            return self.node("abs", inner)
        raise Reject(f"unexpected {v!r}")

    def _mixed(self, whole):
        """`2\\frac{1}{2}` is two and a half (both parts integer literals)."""
        start = self.i
        self.take("\\frac")
        try:
            num, den = self.arg(), self.arg()
        except Reject:
            self.i = start
            return None
        if _is_int_num(num) and _is_int_num(den) and 0 < num[1] < den[1]:
            return self.node("num", whole[1] + num[1] / den[1], "other")
        self.i = start
        return None

    def _subscripted(self, name: str):
        if self.peek_value() == "_":
            self.take()
            t = self.peek()
            if t is None:
                raise Reject("bad subscript")
            if t[1] == "{":
                self.take()
                parts = []
                while self.peek_value() not in ("}", None):
                    parts.append(self.take()[1])
                    if len(parts) > 10:
                        raise Reject("subscript too long")
                self.take("}")
                sub = "".join(parts)
            else:
                self.take()
                sub = t[1] if t[0] != "num" else t[1]
            return self.node("sym", f"{name}_{sub}")
        return self.node("sym", name)

    def bracketed(self):
        """`( .. )`, `[ .. ]` and mixed ends: groups, tuples, intervals."""
        opener = self.take()[1]
        self.enter()
        items = self.sequence(stop=(")", "]"))
        closer = self.peek_value()
        if closer not in (")", "]"):
            raise Reject("unclosed bracket")
        self.take()
        self.leave()
        if len(items) == 1:
            if opener == "(" and closer == ")" or opener == "[" and closer == "]":
                return self.node("group", items[0])
            raise Reject("half-open bracket around one value")
        if len(items) == 2:
            return self.node("interval", opener == "[", items[0], items[1], closer == "]")
        if opener == "(" and closer == ")":
            return self.node("tuple", items)
        if opener == "[" and closer == "]":
            return self.node("tuple", items)
        raise Reject("mismatched brackets")

    def command(self):
        v = self.take()[1]
        name = v[1:]
        if name == "frac":
            num = self.arg()
            den = self.arg()
            return self.node("div", num, den)
        if name == "sqrt":
            index = None
            if self.peek_value() == "[":
                self.take()
                index = self.expr()
                self.take("]")
            return self.node("root", self.arg(), index)
        if name == "binom":
            return self.node("binom", self.arg(), self.arg())
        if name in ("pi", "infty", "infin", "imath"):
            return self.node("const", {"pi": "pi", "infty": "oo", "infin": "oo",
                                       "imath": "I"}[name])
        if name in GREEK:
            return self._subscripted("\\" + name)
        if name == "{":
            self.enter()
            if self.peek_value() == "\\}":
                self.take()
                self.leave()
                return self.node("set", [])
            items = self.sequence(stop=("\\}",))
            self.take("\\}")
            self.leave()
            return self.node("set", items)
        if name in ("lfloor", "lceil"):
            self.enter()
            inner = self.expr()
            self.take("\\rfloor" if name == "lfloor" else "\\rceil")
            self.leave()
            return self.node("func", "floor" if name == "lfloor" else "ceiling", [inner])
        if name == "begin":
            return self.environment()
        if name == "emptyset" or name == "varnothing":
            return self.node("set", [])
        if name in ("overline", "bar", "hat", "vec", "mathbf", "boldsymbol", "widehat",
                    "tilde", "mathcal"):
            inner = self.arg()
            if inner[0] == "sym":
                return self.node("sym", f"{name}({inner[1]})")
            return inner
        if name in FUNCTIONS or name in ("arccot",):
            return self.function(name)
        raise Reject(f"unsupported command {v}")

    def function(self, name: str):
        base = None
        if name == "log" and self.peek_value() == "_":
            self.take()
            base = self.arg()
        power = None
        if self.peek_value() == "^":  # \sin^2 x
            self.take()
            power = self.exponent()
            if power[0] == "neg" and _is_int_num(power[1]) and power[1][1] == 1 and \
                    name in ("sin", "cos", "tan", "cot"):  # \tan^{-1} x = arctan x
                name, power = "arc" + name, None
        self.enter()
        if self.peek_value() == "(":
            arg = self.atom()
        else:
            factors = [self.unary()]
            while self.peek() is not None and (self.peek()[0] in ("num", "letter") or (
                    self.peek()[0] == "cmd" and (self.peek_value()[1:] in GREEK
                                                 or self.peek_value() == "\\pi"))) \
                    and self.peek_value() not in ("U",):
                factors.append(self.power())
            arg = factors[0] if len(factors) == 1 else self.node("mul", factors)
        self.leave()
        out = self.node("func", name, [arg] if base is None else [arg, base])
        if power is not None:
            out = self.node("pow", out, power)
        return out

    def environment(self):
        self.take("{")
        env = []
        while self.peek_value() not in ("}", None):
            env.append(self.take()[1])
        self.take("}")
        env_name = "".join(env).rstrip("*")
        if env_name not in MATRIX_ENVS:
            raise Reject(f"unsupported environment {env_name}")
        if env_name == "array" and self.peek_value() == "{":  # column spec
            self.take()
            while self.peek_value() not in ("}", None):
                self.take()
            self.take("}")
        rows, row = [], []
        self.enter()
        while True:
            if self.peek_value() == "\\end":
                break
            row.append(self.expr())
            v = self.peek_value()
            if v == "&":
                self.take()
            elif v == "\\\\":
                self.take()
                rows.append(row)
                row = []
                if self.peek_value() == "\\end":
                    break
            elif v == "\\end":
                break
            else:
                raise Reject("bad matrix cell")
        if row:
            rows.append(row)
        self.take("\\end")
        self.take("{")
        while self.peek_value() not in ("}", None):
            self.take()
        self.take("}")
        self.leave()
        if not rows or any(len(r) != len(rows[0]) for r in rows):
            raise Reject("ragged matrix")
        return self.node("matrix", rows)


def _repeating(whole: str, frac: str, rep: str) -> Fraction:
    if len(frac) + len(rep) > MAX_DIGITS:
        raise Reject("repeating decimal too long")
    base = Fraction(f"{whole or 0}.{frac}" if frac else (whole or "0"))
    scale = Fraction(1, 10 ** len(frac))
    return base + Fraction(int(rep), 10 ** len(rep) - 1) * scale


def _split_words(tokens: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Plain-text function names (`sin x`, `sqrt(2)`, `pi`) become commands."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        kind, v = tokens[i]
        if kind == "letter":
            j = i
            while j < len(tokens) and tokens[j][0] == "letter":
                j += 1
            word = "".join(t[1] for t in tokens[i:j])
            if word in FUNCTIONS or word in ("sqrt", "pi", "infty", "inf"):
                out.append(("cmd", "\\" + {"inf": "infty"}.get(word, word)))
                i = j
                continue
            if word in ("or", "and") and 0 < i and j < len(tokens):
                out.append(("op", ","))
                i = j
                continue
            if len(word) >= 3:  # prose or a word answer (compared as text), or an env name
                out.append(("word", word))
                i = j
                continue
        out.append((kind, v))
        i += 1
    return out


def parse_answer(text: str):
    """The tree of an answer string; raises `Reject` outside the grammar or over a cap."""
    if not isinstance(text, str) or len(text) > MAX_CHARS:
        raise Reject("answer too long or not a string")
    text = _text_groups(clean(text))
    text = _DEGREES.sub(lambda m: "^\\circ ", text)
    text = strip_units(text.strip()).strip().rstrip(".,;").strip()
    if not text:
        raise Reject("empty answer")
    tokens = _split_words(tokenize(text))
    if not tokens:
        raise Reject("empty answer")
    return Parser(tokens).parse()


def text_key(text: str) -> str:
    """A normalised string for answers that are words: `\\text{Evelyn}` -> `evelyn`."""
    try:
        text = _text_groups(clean(text))
    except Reject:
        return ""
    text = re.sub(r"[\s$\"'`]", "", text).rstrip(".,;:!")
    if re.search(r"(?<![\\a-zA-Z])[a-zA-Z]{2,}", text):  # words: case does not matter
        text = text.lower()
    return text


_CHOICE = re.compile(r"^\(?\s*([A-E])\s*\)?(?:\s|:|\.|$)")


_CHOICE_VALUE = re.compile(r"^\(\s*([A-E])\s*\)\s*(\S.*)$")


def choice_with_value(text: str) -> tuple[str, str] | None:
    """`(B) 12` / `\\textbf{(B) }12` -> ("B", "12"): an AMC-style choice with its value."""
    try:
        text = _text_groups(clean(text)).strip()
    except Reject:
        return None
    m = _CHOICE_VALUE.match(text.replace("{", " ").replace("}", " ").strip())
    return (m.group(1), m.group(2).strip()) if m else None


def choice_letter(text: str) -> str | None:
    """The multiple-choice letter of an answer: `(C)`, `\\text{(C)}`, `C`, `\\textbf{(C) }12`."""
    try:
        text = _text_groups(clean(text)).strip()
    except Reject:
        return None
    text = text.replace("{", " ").replace("}", " ").strip()
    m = _CHOICE.match(text)
    return m.group(1) if m else None
