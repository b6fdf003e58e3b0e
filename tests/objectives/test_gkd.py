"""GKD: aggregated reverse-KL estimate to the teacher; the reward does not enter."""

import pytest
import torch

from rlad_pl.objectives import AGGREGATIONS, ESTIMATORS, GKD, Trajectory, kl_penalty
from tests.objectives.helpers import INF, NAN, grad_of, ref_kl_term, t

L = [[-1.0, -0.3, -2.0, NAN], [-0.6, NAN, NAN, NAN]]
L_T = [[-1.4, -0.5, -1.1, NAN], [-0.2, NAN, NAN, NAN]]
MASK = [[1, 1, 1, 0], [1, 0, 0, 0]]


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_gkd_is_the_kl_term(estimator, aggregation):
    traj = Trajectory(mask=torch.tensor(MASK), advantages=t([5.0, -5.0]),
                      old_logp=t([[-INF] * 4] * 2), teacher_logp=t(L_T), max_new_tokens=7)
    l = t(L).requires_grad_(True)
    loss, metrics = GKD(estimator=estimator, aggregation=aggregation)(l, traj)
    C = 7 if aggregation.endswith("norm") else None
    expected, expected_grad = ref_kl_term(L, L_T, MASK, aggregation, C, estimator)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert torch.allclose(grad_of(loss, l), t(expected_grad), rtol=1e-12, atol=1e-15)
    assert set(metrics) == {"gkd/kl_teacher"} and not metrics["gkd/kl_teacher"].requires_grad
    assert metrics["gkd/kl_teacher"].item() == pytest.approx(expected, rel=1e-12)


def test_gkd_ignores_the_advantages_and_uses_its_constant():
    base = {"mask": torch.tensor(MASK), "teacher_logp": t(L_T), "max_new_tokens": 7}
    a = GKD()(t(L), Trajectory(advantages=t([1.0, -1.0]), **base))[0]
    b = GKD()(t(L), Trajectory(advantages=t([0.0, 0.0]), **base))[0]
    assert torch.equal(a, b)
    # default estimator k2; sum-norm constant 2.5 beats max_new_tokens
    got = GKD(aggregation="seq-mean-token-sum-norm", sum_norm_constant=2.5)(
        t(L), Trajectory(advantages=t([1.0, 1.0]), **base))[0]
    want = kl_penalty(t(L), t(L_T), torch.tensor(MASK), estimator="k2",
                      aggregation="seq-mean-token-sum-norm", sum_norm_constant=2.5)
    assert torch.equal(got, want)
