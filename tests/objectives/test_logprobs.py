"""completion_logprobs and token_entropy (chunked, temperature, dtype)."""

import pytest
import torch

from rlad_pl.objectives import completion_logprobs, token_entropy
from tests.objectives.helpers import INF, grad_of


def test_completion_logprobs_and_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 7, 11, generator=g, requires_grad=True)
    tokens = torch.randint(0, 11, (2, 7), generator=g)
    ref = torch.log_softmax(logits, -1).gather(-1, tokens[..., None]).squeeze(-1)
    full = completion_logprobs(logits, tokens)
    assert full.dtype == torch.float32 and torch.allclose(full, ref, atol=1e-6)
    for chunk in (1, 3, 7, 100):
        assert torch.equal(completion_logprobs(logits, tokens, chunk_size=chunk), full)
        assert torch.equal(token_entropy(logits, chunk_size=chunk), token_entropy(logits))
    assert logits.grad is None and torch.isfinite(grad_of(full.sum(), logits)).all()
    p = torch.softmax(logits.detach(), -1)
    assert torch.allclose(token_entropy(logits), -(p * p.log()).sum(-1), atol=1e-6)
    masked = logits.detach().clone()
    masked[..., :5] = -INF  # e.g. a masked vocabulary: p log p = 0 there
    assert torch.isfinite(token_entropy(masked)).all()
    assert completion_logprobs(logits.detach().bfloat16(), tokens).dtype == torch.float32
    cold = logits.detach() / 0.6  # temperature 0.6, scaled chunk by chunk
    for chunk in (None, 3):
        assert torch.allclose(
            completion_logprobs(logits.detach(), tokens, chunk_size=chunk, temperature=0.6),
            completion_logprobs(cold, tokens),
            atol=1e-6,
        )
        assert torch.allclose(
            token_entropy(logits, chunk_size=chunk, temperature=0.6), token_entropy(cold), atol=1e-6
        )
    assert completion_logprobs(logits[:, :0], tokens[:, :0]).shape == (2, 0)


def test_masked_vocabulary_entropy_value_and_float64():
    logits = torch.tensor([[[0.0, 0.0, -INF, -INF]]], dtype=torch.float64)
    assert token_entropy(logits).item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    lp = completion_logprobs(logits, torch.tensor([[1]]))
    assert lp.dtype == torch.float64 and lp.item() == pytest.approx(-0.6931471805599453)
    assert token_entropy(logits[:, :0]).shape == (1, 0)


def test_chunk_size_must_be_positive():
    logits, tokens = torch.zeros(1, 3, 4), torch.zeros(1, 3, dtype=torch.long)
    for bad in (0, -2):
        with pytest.raises(ValueError, match="chunk_size"):
            completion_logprobs(logits, tokens, chunk_size=bad)
        with pytest.raises(ValueError, match="chunk_size"):
            token_entropy(logits, chunk_size=bad)
    # an empty completion is fine with any chunk size
    assert completion_logprobs(logits[:, :0], tokens[:, :0], chunk_size=0).shape == (1, 0)


def test_chunk_size_checked_for_one_token_and_temperature_two():
    logits = torch.randn(1, 1, 4, generator=torch.Generator().manual_seed(1))
    tokens = torch.zeros(1, 1, dtype=torch.long)
    with pytest.raises(ValueError, match="chunk_size"):
        completion_logprobs(logits, tokens, chunk_size=0)
    hot = completion_logprobs(logits, tokens, temperature=2.0)
    assert torch.allclose(hot, torch.log_softmax(logits / 2, -1)[..., 0], atol=1e-6)
    assert torch.allclose(token_entropy(logits, temperature=2.0),
                          token_entropy(logits / 2), atol=1e-6)


def test_empty_completion_dtype_is_float32_for_low_precision_logits():
    logits = torch.zeros(2, 0, 5, dtype=torch.bfloat16)
    tokens = torch.zeros(2, 0, dtype=torch.long)
    assert completion_logprobs(logits, tokens).dtype == torch.float32
    assert token_entropy(logits).dtype == torch.float32
