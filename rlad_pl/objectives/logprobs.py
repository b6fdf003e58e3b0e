"""Completion-token log-probabilities and entropies from logits.

``log pi(y_t) = log_softmax(z)[y_t]`` with ``z`` the logits at position ``t``. The log-softmax is
computed in float32 straight from low-precision logits (``dtype=`` argument, no upcast copy on
GPU), so the one full-vocabulary float32 tensor alive at a time is the log-softmax of the current
chunk; ``chunk_size`` bounds that chunk to ``[B, chunk_size, V]`` (default: the whole sequence).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _chunks(T: int, chunk_size: int | None) -> list[slice]:
    step = T if chunk_size is None else chunk_size
    if step <= 0 and T > 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    return [slice(i, i + step) for i in range(0, T, max(step, 1))]


def _dtype(logits: Tensor) -> torch.dtype:
    return torch.promote_types(logits.dtype, torch.float32)


def _scaled(logits: Tensor, temperature: float) -> Tensor:
    """``logits / temperature`` (no copy at temperature 1)."""
    return logits if temperature == 1.0 else logits / temperature


def completion_logprobs(logits: Tensor, tokens: Tensor, *, chunk_size: int | None = None,
                        temperature: float = 1.0) -> Tensor:
    """``log pi(tokens) [B, T]`` from ``logits [B, T, V]`` (float32; float64 for float64 logits),
    ``pi = softmax(logits / temperature)`` (scaled chunk by chunk, so ``chunk_size`` still bounds
    the full-vocabulary memory).

    ``logits`` must already be aligned with ``tokens`` (the caller shifts by one). Padding
    positions must hold a valid token id (e.g. the pad id); their value is meaningless.
    """
    B, T = tokens.shape
    out = [
        torch.log_softmax(_scaled(logits[:, t], temperature), dim=-1, dtype=_dtype(logits))
        .gather(-1, tokens[:, t, None])
        .squeeze(-1)
        for t in _chunks(T, chunk_size)
    ]
    return torch.cat(out, dim=1) if out else logits.new_zeros(B, 0, dtype=_dtype(logits))


@torch.no_grad()
def token_entropy(logits: Tensor, *, chunk_size: int | None = None,
                  temperature: float = 1.0) -> Tensor:
    """Entropy ``H = -sum_v p_v log p_v`` of ``p = softmax(logits / temperature)`` at each
    position, ``[B, T]``."""
    B, T = logits.shape[:2]
    out = []
    for t in _chunks(T, chunk_size):
        logp = torch.log_softmax(_scaled(logits[:, t], temperature), dim=-1, dtype=_dtype(logits))
        finite = logp.clamp(min=torch.finfo(logp.dtype).min)  # p = 0 where logp = -inf
        out.append(-torch.linalg.vecdot(logp.exp(), finite))
    return torch.cat(out, dim=1) if out else logits.new_zeros(B, 0, dtype=_dtype(logits))
