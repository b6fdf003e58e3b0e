"""Behaviour kept across the move to objective components: on one fixed batch, every objective's
loss, gradient and metrics are bitwise those of the method-string module at commit 91e1a3b.

``tests/fixtures/objective_golden.pt`` was written by that commit's ``RLADModule.objective``
(alpha 0.3, c 1, kd_coef 0.01 annealed to 0.05 at step 3 of 10, beta 0 / 0.1, every aggregation
and clamp form, ``max_new_tokens`` 10); it is data, not something this code computes.
"""

from pathlib import Path

import pytest
import torch

from rlad_pl.module import RLADModule
from rlad_pl.objectives import GKD, GRPO, KDRL, TRRD, Trajectory

GOLDEN = torch.load(Path(__file__).parent.parent / "fixtures" / "objective_golden.pt",
                    weights_only=True)


def objective_for(config: dict):
    agg = {"aggregation": config["aggregation"], "sum_norm_constant": config["sum_norm_constant"]}
    clip = {"eps_low": config["eps_low"], "eps_high": config["eps_high"]}
    if config["method"] == "rlad":
        return TRRD(alpha=config["alpha"], teacher_clip=config["teacher_clip"],
                    clamp_form=config["teacher_clip_form"], **clip, **agg)
    if config["method"] == "grpo":
        return GRPO(**clip, **agg)
    if config["method"] == "kdrl":
        return KDRL(kd_coef=config["kd_coef"], kd_coef_final=config["kd_coef_final"],
                    estimator=config["kd_estimator"], **clip, **agg)
    return GKD(estimator=config["kd_estimator"], **agg)


def case_id(case: dict) -> str:
    c = case["config"]
    return f"{c['method']}-{c['aggregation']}-{c['teacher_clip_form']}-b{c['beta']}-kd{c['kd_coef_final']}"


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=case_id)
def test_loss_gradient_metrics_bitwise_as_before(case):
    x, config = GOLDEN["inputs"], case["config"]
    module = RLADModule(teacher="tiny-kk-teacher", objective=objective_for(config),
                        beta=config["beta"], kl_estimator=config["kl_estimator"])
    trajectory = Trajectory(mask=x["mask"], advantages=x["advantages"], old_logp=x["old_logp"],
                            teacher_logp=x["teacher_logp"],
                            ref_logp=x["ref_logp"] if config["beta"] else None,
                            max_new_tokens=config["max_new_tokens"])
    logp = x["logp"].clone().requires_grad_(True)
    progress = 3 / 10  # the golden run's global_step / max_steps
    loss, metrics = module.loss(logp, trajectory, progress=progress)
    loss.backward()
    assert torch.equal(loss.detach(), case["loss"])
    assert torch.equal(logp.grad, case["grad"])
    assert metrics.keys() == case["metrics"].keys()
    for key, value in case["metrics"].items():
        assert torch.equal(torch.as_tensor(metrics[key]).detach(), value), key
