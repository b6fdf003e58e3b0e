"""Properties every loss shares: garbage padding, empty completions, detached metrics."""

import pytest
import torch

from rlad_pl.objectives import grpo_loss, kdrl_loss, kl_penalty, trrd_loss
from tests.objectives.helpers import (
    AGGS,
    INF,
    NAN,
    POLICY_KEYS,
    TRRD_KEYS,
    grad_of,
    random_batch,
    t,
)


def _losses(logp, old, teacher, A, mask, aggregation="seq-mean-token-mean"):
    return {
        "trrd": trrd_loss(logp, old, teacher, A, mask, aggregation=aggregation)[0],
        "grpo": grpo_loss(logp, old, A, mask, aggregation=aggregation)[0],
        "kdrl": kdrl_loss(logp, old, teacher, A, mask, kd_coef=0.1, aggregation=aggregation)[0],
        "kl": kl_penalty(logp, teacher, mask, aggregation=aggregation),
    }


@pytest.mark.parametrize("aggregation", AGGS)
def test_garbage_padding_and_empty_completions_never_nan(aggregation):
    logp, old, teacher, A, mask = random_batch(2)
    teacher = torch.where(mask, teacher, NAN)
    x = logp.clone().requires_grad_(True)
    for name, loss in _losses(x, old, teacher, A, mask, aggregation).items():
        g = grad_of(loss, x)
        assert torch.isfinite(loss) and torch.isfinite(g).all(), name
        assert (g[~mask] == 0).all(), name
    # removing the empty completion changes nothing (seq-mean over non-empty completions)
    kept = _losses(logp[:-1], old[:-1], teacher[:-1], A[:-1], mask[:-1], aggregation)
    for name, loss in _losses(logp, old, teacher, A, mask, aggregation).items():
        assert torch.equal(loss, kept[name]), name


def test_all_empty_batch():
    logp = torch.full((2, 3), -INF, dtype=torch.float64, requires_grad=True)
    mask = torch.zeros(2, 3)
    zeros = torch.zeros(2, 3, dtype=torch.float64)
    for loss in _losses(logp, logp.detach(), logp.detach(), t([1.0, -1.0]), mask).values():
        assert loss.item() == 0 and torch.equal(grad_of(loss, logp), zeros)
    _, m = trrd_loss(logp, logp.detach(), logp.detach(), t([1.0, -1.0]), mask)
    assert set(m) == TRRD_KEYS and all(torch.isfinite(v) for v in m.values())


def test_metrics_are_detached_scalars():
    logp, old, teacher, A, mask = random_batch(3)
    x = logp.clone().requires_grad_(True)
    for fn in (
        lambda: trrd_loss(x, old, teacher, A, mask),
        lambda: grpo_loss(x, old, A, mask),
        lambda: kdrl_loss(x, old, teacher, A, mask, kd_coef=0.1),
    ):
        for v in fn()[1].values():
            assert v.dim() == 0 and not v.requires_grad
    assert set(kdrl_loss(x, old, teacher, A, mask, kd_coef=0.1)[1]) == POLICY_KEYS | {
        "kdrl/kd_term"
    }
