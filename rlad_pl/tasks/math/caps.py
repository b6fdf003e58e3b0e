"""Caps shared by the in-process exact path (`verify`) and the symbolic checker (`symbolic`)."""

MAX_EXPONENT = 10_000  # |n| of a numeric exponent
MAX_BITS = 20_000  # size of an exact rational result of a power / product
MAX_FACTORIAL = 500
MAX_ITEMS = 32  # elements of a tuple / set / matrix compared
DECIMAL_TOL = 1e-6  # |written decimal - value| that still matches (0.333333 ~ 1/3)
