"""Restricting per-token tensors to real completion tokens.

Padding positions of log-prob tensors may hold anything (``-inf``, NaN); every objective first
replaces them by 0 with ``torch.where`` so that no NaN can reach the loss or its gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor


def on_tokens(x: Tensor, mask: Tensor) -> Tensor:
    """``x`` on real tokens (``mask`` true), 0 on padding; the gradient to padding is exactly 0."""
    return torch.where(mask.bool(), x, torch.zeros((), dtype=x.dtype, device=x.device))


def token_advantages(advantages: Tensor, mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Advantages ``A`` as ``[B, T]``: one per completion (``[B]``) is broadcast to its tokens."""
    A = advantages.to(dtype)
    if A.dim() == 1:
        A = A[:, None].expand(mask.shape)
    return on_tokens(A, mask)


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x`` over real tokens; 0 when there are none."""
    mask = mask.bool()
    return on_tokens(x, mask).sum() / mask.sum().clamp(min=1)
