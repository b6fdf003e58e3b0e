"""Symbolic (sympy) derivation of the TRRD surrogate's gradient and proofs of the gradient
properties 1-5 of docs/method.md, plus numeric checks of a loss implementation against them.

Run ``python -m analysis`` (``--verbose`` lists every claim, ``--branches`` the derivative table).
"""

from analysis.numeric import run_numeric
from analysis.proofs import PROOFS

PROPERTIES = {
    "D": "ds/dl = A r du/dl unclipped, 0 clipped (27 branches)",
    "D'": "alternative clamp form: du/dl = 1 on every branch",
    "1": "A>0: grad != 0 iff r < 1+eps_high; A<0: iff r > 1-eps_low; A=0: 0",
    "2": "selective imitation at the first update (l = l_old)",
    "3": "trust region around the anchor",
    "4": "alpha = 1 is GRPO exactly; teacher ignored",
    "5": "KDRL pulls toward the teacher at A = 0, TRRD does not",
}

__all__ = ["PROOFS", "PROPERTIES", "run_numeric"]
