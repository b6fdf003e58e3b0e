"""Aggregation: how per-token terms become one scalar (docs/method.md, "Aggregation").

- ``seq-mean-token-mean``: mean over the tokens of each completion, then mean over completions
  (the paper's equation; default).
- ``token-mean``: every real token of the batch weighs the same (DAPO).
- ``seq-mean-token-sum-norm``: each completion's token sum divided by a constant, then mean over
  completions (Dr. GRPO). The constant is ``sum_norm_constant``; when it is not given it is ``T``,
  the padded completion width of the batch. Pass the generation budget (``max_new_tokens``) to make
  it independent of the batch, as Dr. GRPO does.

Padding never counts. A completion with no real token contributes nothing: it is left out of the
mean over completions (adding or removing it does not change the result). A batch without any
real token aggregates to 0 (still connected to the autograd graph), never NaN.
"""

from __future__ import annotations

from torch import Tensor

from rlad_pl.checks import AGGREGATIONS
from rlad_pl.objectives.tokens import on_tokens


def aggregate(
    values: Tensor,
    mask: Tensor,
    aggregation: str = "seq-mean-token-mean",
    *,
    sum_norm_constant: float | None = None,
) -> Tensor:
    """Aggregate per-token ``values [B, T]`` over the real tokens of ``mask [B, T]`` to a scalar."""
    mask = mask.bool()
    v = on_tokens(values, mask)
    n_tokens = mask.sum(-1)  # [B]
    n_completions = (n_tokens > 0).sum().clamp(min=1)
    if aggregation == "token-mean":
        return v.sum() / n_tokens.sum().clamp(min=1)
    if aggregation == "seq-mean-token-mean":
        return (v.sum(-1) / n_tokens.clamp(min=1)).sum() / n_completions
    if aggregation == "seq-mean-token-sum-norm":
        C = values.shape[-1] if sum_norm_constant is None else sum_norm_constant
        if C <= 0:
            raise ValueError(f"sum_norm_constant must be positive, got {C}")
        return (v.sum(-1) / C).sum() / n_completions
    raise ValueError(f"unknown aggregation {aggregation!r}; expected one of {AGGREGATIONS}")
