"""Group-relative advantages (docs/method.md, "Setting").

``A_i = (R_i - mean_j R_j) / (std_j R_j + eps)`` over the ``G`` completions of one prompt, with
the population std. ``scale="none"`` drops the std (Dr. GRPO). Groups whose rewards are all
equal carry no learning signal: they are flagged in ``zero_variance`` (for DAPO-style dropping)
and their advantages are exactly 0.
"""

from __future__ import annotations

import torch
from torch import Tensor


def group_advantages(
    rewards: Tensor, group_size: int, *, scale: str = "std", eps: float = 1e-6
) -> tuple[Tensor, Tensor]:
    """``(A [N], zero_variance [N] bool)`` for prompt-major ``rewards [N]`` (``G = group_size``)."""
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    R = rewards.to(torch.promote_types(rewards.dtype, torch.float32)).reshape(-1, group_size)
    A = R - R.mean(-1, keepdim=True)
    if scale == "std":
        A = A / (R.std(-1, correction=0, keepdim=True) + eps)
    elif scale != "none":
        raise ValueError(f"unknown advantage scale {scale!r}; expected 'std' or 'none'")
    zero_variance = (R == R[:, :1]).all(-1, keepdim=True).expand_as(R)
    A = torch.where(zero_variance, torch.zeros((), dtype=A.dtype), A)
    return A.reshape(-1), zero_variance.reshape(-1)
