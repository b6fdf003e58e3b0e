"""KL estimators k1, k2, k3 and kl_penalty (docs/method.md, "GRPO" and "KDRL")."""

import math

import pytest
import torch

from rlad_pl.objectives import ESTIMATORS, kl_estimate, kl_penalty
from tests.objectives.helpers import AGGS, INF, grad_of, ref_kl_term, t

L, L_T = t([[-1.0, -2.0]]), t([[-1.5, -1.0]])  # d = l - l_T = (0.5, -1)
KD = {
    "k1": (0.5 - 1) / 2,
    "k2": (0.125 + 0.5) / 2,
    "k3": ((math.exp(-0.5) + 0.5 - 1) + (math.exp(1) - 1 - 1)) / 2,
}


def test_estimators_tuple():
    assert ESTIMATORS == ("k1", "k2", "k3")


@pytest.mark.parametrize("estimator", sorted(KD))
def test_kl_values(estimator):
    mask = torch.ones(1, 2)
    assert kl_penalty(L, L_T, mask, estimator=estimator).item() == pytest.approx(
        KD[estimator], abs=1e-15
    )


def test_kl_defaults_are_k3():
    assert kl_penalty(L, L_T, torch.ones(1, 2)).item() == pytest.approx(KD["k3"], abs=1e-15)
    assert torch.equal(kl_estimate(L, L_T), kl_estimate(L, L_T, "k3"))


def test_k3_is_the_spec_formula_and_non_negative():
    d = torch.linspace(-3, 3, 61, dtype=torch.float64)
    l_ref = torch.zeros_like(d)
    spec = torch.exp(l_ref - d) - (l_ref - d) - 1
    k3 = kl_estimate(d, l_ref, "k3")
    assert torch.allclose(k3, spec, rtol=1e-12, atol=1e-15) and (k3 >= 0).all()
    assert kl_estimate(t([0.0]), t([0.0]), "k3").item() == 0


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("aggregation", AGGS)
@pytest.mark.parametrize("C", [None, 6.5])
def test_kl_penalty_every_aggregation(estimator, aggregation, C):
    l_rows = [[-1.0, -0.3, -2.0], [-0.6, -INF, -INF]]
    ref_rows = [[-1.4, -0.5, -1.1], [-0.2, -INF, -INF]]
    mask = [[1, 1, 1], [1, 0, 0]]
    l = t(l_rows).requires_grad_(True)
    out = kl_penalty(
        l,
        t(ref_rows),
        torch.tensor(mask),
        estimator=estimator,
        aggregation=aggregation,
        sum_norm_constant=C,
    )
    expected, expected_grad = ref_kl_term(l_rows, ref_rows, mask, aggregation, C, estimator)
    assert out.item() == pytest.approx(expected, rel=1e-12)
    assert torch.allclose(grad_of(out, l), t(expected_grad), rtol=1e-12, atol=1e-15)


def test_unknown_estimator():
    with pytest.raises(ValueError):
        kl_penalty(L, L_T, torch.ones(1, 2), estimator="k4")
    with pytest.raises(ValueError, match="k4"):
        kl_estimate(L, L_T, "k4")
