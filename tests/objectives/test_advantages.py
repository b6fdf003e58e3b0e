"""group_advantages: A_i = (R_i - mean R) / (std R + eps), zero-variance groups exactly 0."""

import math

import pytest
import torch

from rlad_pl.objectives import group_advantages


def test_group_advantages():
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    A, zero_variance = group_advantages(rewards, 4)
    std = math.sqrt(0.1875)  # population std of (1, 0, 1, 1)
    expected = torch.tensor([0.25, -0.75, 0.25, 0.25, 0, 0, 0, 0]) / torch.tensor(
        [std + 1e-6] * 4 + [1] * 4
    )
    assert torch.allclose(A, expected)
    assert zero_variance.tolist() == [False] * 4 + [True] * 4
    A, _ = group_advantages(rewards, 4, scale="none")
    assert torch.allclose(A, torch.tensor([0.25, -0.75, 0.25, 0.25, 0, 0, 0, 0]))
    A, zero_variance = group_advantages(torch.tensor([1, 1, 0, 1]), 2)  # integer rewards
    assert A.dtype == torch.float32 and zero_variance.tolist() == [True, True, False, False]
    with pytest.raises(ValueError):
        group_advantages(rewards, 3)
    with pytest.raises(ValueError):
        group_advantages(rewards, 4, scale="max")


@pytest.mark.parametrize("scale", ["std", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_zero_variance_groups_of_non_binary_rewards_are_exactly_zero(scale, dtype):
    # eight rewards of 0.1 (e.g. a partial-credit total): R - mean(R) is not exactly 0 in
    # floating point, so without the guard |A| would be ~1e-2 after the std division
    rewards = torch.tensor([0.1] * 8 + [0.3] * 8 + [0.7, 0.2] * 4, dtype=dtype)
    A, zero_variance = group_advantages(rewards, 8, scale=scale)
    assert torch.equal(A[:16], torch.zeros(16, dtype=dtype))
    assert zero_variance.tolist() == [True] * 16 + [False] * 8
    assert (A[16:] != 0).all()


def test_advantages_are_population_std_with_eps():
    # (0, 1e-6): population std 5e-7, so A = +-5e-7 / (5e-7 + 1e-6) = +-1/3 (pins eps = 1e-6)
    A, _ = group_advantages(torch.tensor([0.0, 1e-6], dtype=torch.float64), 2)
    assert A.tolist() == pytest.approx([-1 / 3, 1 / 3], rel=1e-9)
    A, _ = group_advantages(torch.tensor([0.0, 1e-6], dtype=torch.float64), 2, eps=0.0)
    assert A.tolist() == pytest.approx([-1.0, 1.0], rel=1e-9)
    # three rewards: population (not sample) std
    A, _ = group_advantages(torch.tensor([0.0, 0.0, 3.0], dtype=torch.float64), 3, eps=0.0)
    assert A.tolist() == pytest.approx([-1 / math.sqrt(2), -1 / math.sqrt(2), math.sqrt(2)])


def test_groups_are_prompt_major_and_shape_is_kept():
    rewards = torch.tensor([0.0, 1.0, 5.0, 5.0, 2.0, 4.0], dtype=torch.float64)
    A, zv = group_advantages(rewards, 2, scale="none")
    assert A.shape == (6,) and zv.shape == (6,)
    assert A.tolist() == [-0.5, 0.5, 0.0, 0.0, -1.0, 1.0]
    assert zv.tolist() == [False, False, True, True, False, False]


def test_bad_group_size_message_names_the_numbers():
    with pytest.raises(ValueError, match="5 rewards"):
        group_advantages(torch.zeros(5), 2)
    with pytest.raises(ValueError, match="max"):
        group_advantages(torch.zeros(4), 2, scale="max")
