"""Shared inputs for the objective tests, and a plain-Python reference of the spec's equations.

The reference (``ref_*``) is written from docs/method.md with ``math`` on lists of floats,
independently of ``rlad_pl.objectives``; the tests compare the implementation against it.
"""

import math

import torch

INF, NAN = math.inf, math.nan
AGGS = ("seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm")
POLICY_KEYS = {
    "ratio/mean",
    "ratio/min",
    "ratio/max",
    "clip/frac_low",
    "clip/frac_high",
    "clip/frac_pos_adv",
    "clip/frac_neg_adv",
}
TRRD_KEYS = POLICY_KEYS | {
    "trrd/log_ratio_teacher_mean",
    "trrd/log_ratio_teacher_abs_mean",
    "trrd/clamp_active_frac",
    "trrd/anchor_stopped_frac",
    "trrd/anchor_widened_frac",
}


def t(rows):
    return torch.tensor(rows, dtype=torch.float64)


def grad_of(loss, x):
    (g,) = torch.autograd.grad(loss, x)
    return g


def random_batch(seed, B=5, T=6, per_token=False):
    """Random log-probs (``-inf`` on padding), advantages and a mask with an empty last row."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(B, T, generator=g) < 0.7
    mask[-1] = False

    def lp(scale):
        return torch.where(mask, -scale * torch.rand(B, T, generator=g, dtype=torch.float64), -INF)

    A = torch.randn((B, T) if per_token else (B,), generator=g, dtype=torch.float64)
    return lp(2.0), lp(2.0), lp(5.0), A, mask


# ---------------------------------------------------------------- plain-Python reference


def ref_weights(mask_rows, aggregation, C=None):
    """Weight of each token in the aggregate (0 on padding), from the spec's definitions."""
    T = len(mask_rows[0])
    lengths = [sum(row) for row in mask_rows]
    n_seq = sum(1 for n in lengths if n > 0)
    n_tok = sum(lengths)
    out = []
    for row, n in zip(mask_rows, lengths, strict=True):
        if aggregation == "token-mean":
            w = 1 / n_tok
        elif aggregation == "seq-mean-token-mean":
            w = 1 / n / n_seq if n else 0.0
        else:  # seq-mean-token-sum-norm: token sum / C (C = padded width by default)
            w = 1 / (T if C is None else C) / n_seq
        out.append([w if m else 0.0 for m in row])
    return out


def ref_surrogate(r, A, eps_low, eps_high):
    """``(s, ds/dr)`` for one token: ``s = min(r A, clip(r, 1 - eps_low, 1 + eps_high) A)``."""
    clipped_r = min(max(r, 1 - eps_low), 1 + eps_high)
    unclipped, clipped = r * A, clipped_r * A
    if unclipped <= clipped:
        return unclipped, A
    return clipped, 0.0


def ref_policy_loss(log_r, dlogr_dl, A, mask_rows, aggregation, C, eps_low, eps_high):
    """``(loss, d loss / d l)`` of ``-aggregate(s)`` from per-token ``log r``, ``d log r / dl``."""
    W = ref_weights(mask_rows, aggregation, C)
    loss, grad = 0.0, []
    for i, row in enumerate(mask_rows):
        g_row = []
        for j, m in enumerate(row):
            if not m:
                g_row.append(0.0)
                continue
            r = math.exp(log_r[i][j])
            s, ds_dr = ref_surrogate(r, A[i][j], eps_low, eps_high)
            loss -= W[i][j] * s
            g_row.append(-W[i][j] * ds_dr * r * dlogr_dl[i][j])
        grad.append(g_row)
    return loss, grad


def ref_kl(d, estimator):
    """``(k, dk/dl)`` of one token with ``d = l - l_other``."""
    if estimator == "k1":
        return d, 1.0
    if estimator == "k2":
        return 0.5 * d * d, d
    return math.exp(-d) + d - 1, 1 - math.exp(-d)  # k3 = exp(l_other - l) - (l_other - l) - 1


def ref_kl_term(l, l_other, mask_rows, aggregation, C, estimator):
    """``(aggregate(k), d aggregate / d l)``."""
    W = ref_weights(mask_rows, aggregation, C)
    total, grad = 0.0, []
    for i, row in enumerate(mask_rows):
        g_row = []
        for j, m in enumerate(row):
            if not m:
                g_row.append(0.0)
                continue
            k, dk = ref_kl(l[i][j] - l_other[i][j], estimator)
            total += W[i][j] * k
            g_row.append(W[i][j] * dk)
        grad.append(g_row)
    return total, grad


def clamp(x, c):
    return x if c is None else max(-c, min(c, x))


def ref_trrd_log_ratio(l, l_old, l_T, alpha, c, clamp_form):
    """``(log r, d log r / dl)`` for one token (docs/method.md, "TRRD / RLAD")."""
    if clamp_form == "ratio":
        inside = c is None or abs(l - l_T) < c
        return alpha * (l - l_old) + (1 - alpha) * clamp(l - l_T, c), 1.0 if inside else alpha
    log_anchor = l_old + (1 - alpha) * clamp(l_T - l_old, c)
    return l - log_anchor, 1.0
