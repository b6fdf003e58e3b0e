"""aggregate(): the three aggregations of docs/method.md, padding and empty completions."""

import pytest
import torch

from rlad_pl.objectives import AGGREGATIONS, aggregate
from tests.objectives.helpers import AGGS, INF, NAN, grad_of, ref_weights, t

VALUES = t([[1.0, 2.0, 3.0], [4.0, NAN, -INF], [NAN, NAN, NAN]])
MASK = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0]])


def test_aggregations_tuple_names_the_spec():
    assert AGGREGATIONS == AGGS


@pytest.mark.parametrize(
    "aggregation, kwargs, expected",
    [
        ("token-mean", {}, (1 + 2 + 3 + 4) / 4),
        ("seq-mean-token-mean", {}, (2 + 4) / 2),  # the empty completion is left out
        ("seq-mean-token-sum-norm", {"sum_norm_constant": 4}, (6 / 4 + 4 / 4) / 2),
        ("seq-mean-token-sum-norm", {}, (6 / 3 + 4 / 3) / 2),  # default constant: T = 3
    ],
)
def test_aggregate(aggregation, kwargs, expected):
    assert aggregate(VALUES, MASK, aggregation, **kwargs).item() == pytest.approx(
        expected, abs=1e-15
    )


def test_default_aggregation_is_seq_mean_token_mean():
    assert aggregate(VALUES, MASK).item() == pytest.approx((2 + 4) / 2, abs=1e-15)


@pytest.mark.parametrize("aggregation", AGGS)
@pytest.mark.parametrize("C", [None, 2.5, 7])
def test_aggregate_weights_match_the_reference(aggregation, C):
    # asymmetric lengths (3, 1, 2 real tokens, one empty row): each token's weight is the gradient
    mask = torch.tensor([[1, 1, 1, 0], [0, 1, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0]])
    v = torch.arange(16, dtype=torch.float64).reshape(4, 4).requires_grad_(True)
    out = aggregate(v, mask, aggregation, sum_norm_constant=C)
    W = t(ref_weights(mask.tolist(), aggregation, C))
    assert out.item() == pytest.approx((W * v.detach()).sum().item(), abs=1e-13)
    assert torch.allclose(grad_of(out, v), W, rtol=0, atol=1e-15)


@pytest.mark.parametrize("aggregation", AGGS)
def test_empty_completion_contributes_nothing(aggregation):
    kw = {"sum_norm_constant": 3} if aggregation.endswith("norm") else {}
    assert torch.equal(
        aggregate(VALUES, MASK, aggregation, **kw),
        aggregate(VALUES[:2], MASK[:2], aggregation, **kw),
    )


@pytest.mark.parametrize("aggregation", AGGS)
def test_all_empty_batch_is_zero_with_a_gradient(aggregation):
    v = torch.full((2, 3), NAN, dtype=torch.float64, requires_grad=True)
    out = aggregate(v, torch.zeros(2, 3), aggregation)
    assert out.item() == 0 and out.requires_grad
    assert torch.equal(grad_of(out, v), torch.zeros(2, 3, dtype=torch.float64))


def test_aggregate_rejects_unknown_and_bad_constant():
    with pytest.raises(ValueError, match="unknown aggregation 'mean'"):
        aggregate(VALUES, MASK, "mean")
    with pytest.raises(ValueError):
        aggregate(VALUES, MASK, "seq-mean-token-sum-norm", sum_norm_constant=0)
    with pytest.raises(ValueError, match="-1"):
        aggregate(VALUES, MASK, "seq-mean-token-sum-norm", sum_norm_constant=-1)
    # a tiny positive constant is legal
    assert torch.isfinite(
        aggregate(VALUES, MASK, "seq-mean-token-sum-norm", sum_norm_constant=1e-9)
    )


@pytest.mark.parametrize("aggregation", AGGS)
def test_single_token_batch(aggregation):
    # one real token: every aggregation returns it (sum-norm: divided by the constant)
    v, mask = t([[NAN, 2.5]]), torch.tensor([[0, 1]])
    expected = 2.5 / 2 if aggregation.endswith("norm") else 2.5
    assert aggregate(v, mask, aggregation).item() == expected
