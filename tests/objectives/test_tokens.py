"""Restricting per-token tensors to real tokens."""

import torch

from rlad_pl.objectives.tokens import masked_mean, on_tokens, token_advantages
from tests.objectives.helpers import INF, NAN, grad_of, t


def test_on_tokens_zeroes_padding_and_its_gradient():
    x = t([[1.0, NAN, -INF], [INF, 2.0, 3.0]]).requires_grad_(True)
    mask = torch.tensor([[1, 0, 0], [0, 1, 1]])
    y = on_tokens(x, mask)
    assert y.tolist() == [[1.0, 0.0, 0.0], [0.0, 2.0, 3.0]]
    assert grad_of(y.sum(), x).tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]


def test_token_advantages_broadcast_and_dtype():
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    A = token_advantages(torch.tensor([2.0, -1.0]), mask, torch.float64)
    assert A.dtype == torch.float64 and A.tolist() == [[2.0, 2.0, 0.0], [-1.0, 0.0, 0.0]]
    A = token_advantages(t([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), mask, torch.float32)
    assert A.dtype == torch.float32 and A.tolist() == [[1.0, 2.0, 0.0], [4.0, 0.0, 0.0]]


def test_masked_mean():
    x = t([[1.0, NAN], [3.0, 8.0]])
    assert masked_mean(x, torch.tensor([[1, 0], [1, 1]])).item() == 4.0
    assert masked_mean(x, torch.zeros(2, 2)).item() == 0.0
