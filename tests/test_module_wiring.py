"""The module feeds the objective what the spec says: the right log-probs in the right slots,
the KL-to-reference term with its sign and weight, the training progress.

Two levels: ``RLADModule.loss`` on a fixed batch equals the pure loss functions called directly
(every objective, teacher present, beta 0 and > 0); and during a real ``Trainer.fit`` the
trajectory the module builds holds the teacher's, the rollout-time student's and the reference's
log-probs of the sampled tokens, each recomputed here from the models themselves.
"""

import copy

import pytest
import torch

from rlad_pl.models import load_model
from rlad_pl.module import RLADModule
from rlad_pl.objectives import (
    GKD,
    GRPO,
    KDRL,
    TRRD,
    Trajectory,
    grpo_loss,
    kdrl_loss,
    kl_penalty,
    trrd_loss,
)
from rlad_pl.rollout import SamplingSettings
from tests.test_module_fixtures import STUDENT, TEACHER, fit, tiny_data, tiny_module

AGGS = ("seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm")


def fixed_batch(seed=0, B=6, T=5):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(B, T, generator=g) < 0.75
    mask[:, 0] = True

    def lp(scale):
        return torch.where(mask, -scale * torch.rand(B, T, generator=g), -torch.inf)

    logp, old, teacher, ref = lp(2.0), lp(2.0), lp(4.0), lp(3.0)
    A = torch.randn(B, generator=g)
    return logp, old, teacher, ref, A, mask


OBJECTIVES = {
    "trrd": lambda agg: TRRD(alpha=0.3, teacher_clip=0.7, eps_low=0.15, eps_high=0.35,
                             aggregation=agg),
    "trrd-anchor": lambda agg: TRRD(alpha=0.8, clamp_form="anchor", aggregation=agg),
    "grpo": lambda agg: GRPO(eps_low=0.1, eps_high=0.4, aggregation=agg),
    "kdrl": lambda agg: KDRL(kd_coef=0.2, kd_coef_final=0.6, estimator="k3", aggregation=agg),
    "gkd": lambda agg: GKD(estimator="k1", aggregation=agg),
}


def direct(name, logp, old, teacher, A, mask, agg, C, progress):
    """The objective's loss from the pure functions, arguments spelled out."""
    kw = {"aggregation": agg, "sum_norm_constant": C}
    if name == "trrd":
        return trrd_loss(logp, old, teacher, A, mask, alpha=0.3, teacher_clip=0.7,
                         eps_low=0.15, eps_high=0.35, **kw)[0]
    if name == "trrd-anchor":
        return trrd_loss(logp, old, teacher, A, mask, alpha=0.8, clamp_form="anchor", **kw)[0]
    if name == "grpo":
        return grpo_loss(logp, old, A, mask, eps_low=0.1, eps_high=0.4, **kw)[0]
    if name == "kdrl":
        coef = 0.2 + (0.6 - 0.2) * progress
        return kdrl_loss(logp, old, teacher, A, mask, kd_coef=coef, estimator="k3", **kw)[0]
    return kl_penalty(logp, teacher, mask, estimator="k1", **kw)


@pytest.mark.parametrize("agg", AGGS)
@pytest.mark.parametrize("beta", [0.0, 0.25])
@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_module_loss_is_the_pure_loss_plus_beta_kl(name, beta, agg):
    logp, old, teacher, ref, A, mask = fixed_batch()
    module = RLADModule(student=STUDENT, teacher=TEACHER, objective=OBJECTIVES[name](agg),
                        beta=beta, kl_estimator="k2")
    trajectory = Trajectory(mask=mask, advantages=A, old_logp=old, teacher_logp=teacher,
                            ref_logp=ref if beta else None, max_new_tokens=9)
    progress = 0.4
    x = logp.clone().requires_grad_(True)
    loss, metrics = module.loss(x, trajectory, progress=progress)
    (grad,) = torch.autograd.grad(loss, x)

    C = 9 if agg.endswith("norm") else None  # sum-norm constant: the rollout's max_new_tokens
    y = logp.clone().requires_grad_(True)
    expected = direct(name, y, old, teacher, A, mask, agg, C, progress)
    if beta:  # + beta * KL(pi_S || pi_ref), the module's estimator, the objective's aggregation
        kl_ref = kl_penalty(y, ref, mask, estimator="k2", aggregation=agg, sum_norm_constant=C)
        expected = expected + beta * kl_ref
        assert metrics["kl_ref"].item() == pytest.approx(kl_ref.item(), rel=1e-6)
        assert kl_ref.item() > 0  # so a wrong sign or weight of the term shows in the loss
    else:
        assert "kl_ref" not in metrics
    (expected_grad,) = torch.autograd.grad(expected, y)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6, abs=1e-7)
    assert torch.allclose(grad, expected_grad, rtol=1e-5, atol=1e-8)


def test_beta_kl_term_has_its_sign_and_weight():
    # the same batch at beta 0, 0.25 and 0.5: the loss grows by beta * KL, linearly
    logp, old, teacher, ref, A, mask = fixed_batch(1)
    trajectory = Trajectory(mask=mask, advantages=A, old_logp=old, teacher_logp=teacher,
                            ref_logp=ref)
    losses = [RLADModule(student=STUDENT, teacher=None, objective=GRPO(), beta=beta)
              .loss(logp, trajectory, progress=0.0)[0].item() for beta in (0.0, 0.25, 0.5)]
    kl = kl_penalty(logp, ref, mask, estimator="k3").item()  # the module's default estimator
    assert kl > 0.1
    assert losses[1] - losses[0] == pytest.approx(0.25 * kl, rel=1e-5)
    assert losses[2] - losses[0] == pytest.approx(0.5 * kl, rel=1e-5)


# ------------------------------------------------------------ inside a real fit


def recomputed_logprobs(model, rollout, temperature):
    """``log pi(y_t)`` of the sampled tokens, from the model's logits (positions from the mask)."""
    with torch.no_grad():
        positions = (rollout.attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=rollout.sequences, attention_mask=rollout.attention_mask,
                       position_ids=positions).logits.float()
        P = rollout.prompt_length
        logits = logits[:, P - 1:-1] / temperature
        tokens = rollout.sequences[:, P:]
        return torch.log_softmax(logits, -1).gather(-1, tokens[..., None]).squeeze(-1)


class TrajectoryRecorder:
    """Wraps ``module.trajectory``: stores each rollout, its trajectory, and the log-probs of the
    student as it is when the trajectory is built (before any update on that rollout)."""

    def __init__(self, module, temperature):
        self.module, self.real, self.temperature = module, module.trajectory, temperature
        self.calls = []
        self.reference = load_model(STUDENT).eval()  # pi_ref: the student's initial weights

    def __call__(self, rollout, A, times):
        trajectory = self.real(rollout, A, times)
        student = copy.deepcopy(self.module.student).eval()
        teacher = self.module.frozen["teacher"]
        self.calls.append({
            "trajectory": trajectory,
            "student": recomputed_logprobs(student, rollout, self.temperature),
            # the teacher scores the sampled tokens at temperature 1 (its own distribution)
            "teacher": recomputed_logprobs(teacher, rollout, 1.0),
            "reference": recomputed_logprobs(self.reference, rollout, self.temperature),
        })
        return trajectory


def test_fit_feeds_teacher_old_and_reference_logprobs_into_the_trajectory():
    temperature = 0.8
    module = tiny_module(TRRD(alpha=0.5), beta=0.1, ppo_epochs=2,
                         sampling=SamplingSettings(num_samples=4, max_new_tokens=8,
                                                   temperature=temperature))
    recorder = TrajectoryRecorder(module, temperature)
    module.trajectory = recorder
    fit(module, tiny_data(), max_steps=4)  # 2 rollouts x 2 epochs
    assert len(recorder.calls) == 2
    for i, call in enumerate(recorder.calls):
        trajectory = call["trajectory"]
        mask = trajectory.mask.bool()
        assert mask.any()
        for slot, source in (("old_logp", "student"), ("teacher_logp", "teacher"),
                             ("ref_logp", "reference")):
            got = getattr(trajectory, slot)
            assert got is not None, slot
            assert torch.allclose(got[mask], call[source][mask], atol=2e-4), (i, slot)
        # the three sources are different models, so a swap would show
        assert (call["teacher"][mask] - call["student"][mask]).abs().max() > 0.05
        assert trajectory.max_new_tokens == 8
    # after the first rollout's updates the student is no longer the reference
    second = recorder.calls[1]
    m = second["trajectory"].mask.bool()
    assert (second["student"][m] - second["reference"][m]).abs().max() > 1e-3


class ProgressRecorder(KDRL):
    """KDRL that records the ``progress`` it is called with."""

    def __init__(self):
        super().__init__(kd_coef=0.01, kd_coef_final=0.05)
        self.seen = []

    def __call__(self, logp, trajectory, *, progress=0.0):
        self.seen.append(progress)
        return super().__call__(logp, trajectory, progress=progress)


def test_fit_passes_the_training_progress():
    objective = ProgressRecorder()
    module = tiny_module(objective)
    fit(module, tiny_data(), max_steps=4)
    # one (micro)batch per step here: progress = global_step / max_steps before each update
    assert objective.seen == pytest.approx([0.0, 0.25, 0.5, 0.75])
