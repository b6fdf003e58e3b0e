"""Training goes the right way: a few steps through the real RLADModule and Lightning Trainer on
the embedded student raise a learnable synthetic reward (GRPO, TRRD, KDRL), or lower the KL
estimate to the teacher on the student's samples (GKD, whose loss has no reward), two seeds each.

The reward ("short answer") is ``1 - len(completion) / 40`` (at least 0): the embedded K&K
student writes ~30 characters in 8 tokens, so the initial mean is ~0.3 and shorter tokens or an
early EOS raise it. The margin below is what the right sign of the loss must achieve.

Negative control (the tests must fail when the loss sign is flipped):
``RLAD_TEST_FLIP_LOSS_SIGN=1 pytest tests/test_learning.py`` wraps every objective so that it
returns ``-loss``; then every test here fails (the reward falls or stays, the KL rises). The two
``test_flipped_*`` tests keep that control in the default run for GRPO and GKD.
"""

import os

import pytest
import torch
from lightning.pytorch import Callback

from rlad_pl.objectives import GKD, GRPO, KDRL, TRRD
from rlad_pl.optim import Optimization
from rlad_pl.rollout import SamplingSettings
from tests.test_module_fixtures import TEACHER, ParityTask, fit, tiny_data, tiny_module

STEPS = 8
MARGIN = 0.15  # reward: mean of the last two steps minus mean of the first two
KL_DROP = 0.7  # GKD: KL estimate after the last step below this fraction of the first
FLIP = os.environ.get("RLAD_TEST_FLIP_LOSS_SIGN") == "1"


class ShortAnswerTask(ParityTask):
    """K&K prompts; the reward prefers short completions (learnable from the first step)."""

    def score(self, completion: str, record: dict) -> dict:
        r = max(0.0, 1.0 - len(completion) / 40)
        return {"total": r, "correct": r > 0.5}


class StepMetric(Callback):
    """The value of one logged metric after every training step."""

    def __init__(self, key: str) -> None:
        self.key, self.values = key, []

    def on_train_batch_end(self, trainer, *args) -> None:
        self.values.append(float(trainer.callback_metrics[self.key]))


def flipped(objective_class):
    """``objective_class`` with the sign of its loss flipped (the negative control)."""

    class Flipped(objective_class):
        def __call__(self, logp, trajectory, *, progress=0.0):
            loss, metrics = super().__call__(logp, trajectory, progress=progress)
            return -loss, metrics

    Flipped.__name__ = f"Flipped{objective_class.__name__}"
    return Flipped


def train(objective, seed, key):
    module = tiny_module(objective, teacher=TEACHER if objective.needs_teacher else None,
                         sampling=SamplingSettings(num_samples=8, max_new_tokens=8),
                         optimization=Optimization(lr=2e-3), seed=seed)
    recorder = StepMetric(key)
    fit(module, tiny_data(ShortAnswerTask(people=(3, 4)), prompts_per_step=4, seed=seed),
        max_steps=STEPS, callbacks=[recorder])
    assert len(recorder.values) == STEPS
    values = recorder.values
    return sum(values[:2]) / 2, sum(values[-2:]) / 2, values


OBJECTIVES = {
    "grpo": lambda cls=GRPO: cls(),
    "trrd": lambda cls=TRRD: cls(alpha=0.5),
    "kdrl": lambda cls=KDRL: cls(kd_coef=0.01),
}
CLASSES = {"grpo": GRPO, "trrd": TRRD, "kdrl": KDRL, "gkd": GKD}


def build(name, flip=FLIP):
    cls = flipped(CLASSES[name]) if flip else CLASSES[name]
    return OBJECTIVES[name](cls) if name in OBJECTIVES else cls()


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_reward_rises(name, seed):
    start, end, values = train(build(name), seed, "train/reward/mean")
    assert end - start > MARGIN, values


class LossRecorder:
    """Mixin: records the loss of every call of the objective."""

    def __call__(self, logp, trajectory, *, progress=0.0):
        loss, metrics = super().__call__(logp, trajectory, progress=progress)
        self.losses.append(float(loss))
        return loss, metrics


def gkd_losses(flip, seed):
    """GKD's loss on ONE rollout over ``STEPS`` optimizer steps (ppo_epochs = STEPS, the whole
    rollout per minibatch), so every value is the KL estimate on the same student samples."""
    cls = type("RecordedGKD", (LossRecorder, flipped(GKD) if flip else GKD), {})
    objective = cls()
    objective.losses = []
    module = tiny_module(objective, sampling=SamplingSettings(num_samples=8, max_new_tokens=8),
                         optimization=Optimization(lr=1e-3), ppo_epochs=STEPS, seed=seed)
    fit(module, tiny_data(ShortAnswerTask(people=(3, 4)), prompts_per_step=4, seed=seed),
        max_steps=STEPS)
    losses = [-v for v in objective.losses] if flip else objective.losses  # the KL itself
    assert len(losses) == STEPS
    return losses


# On-policy (a fresh rollout per step) GKD does NOT reliably lower its KL on this pair in a few
# steps: at lr 2e-3 its logged k2 estimate rose 11 -> 80+ over 8 steps, and the exact
# full-vocabulary KL on fixed contexts rose too at lr 1e-3 (1.8 -> 6.6; mixed at 1e-4); see the
# tests helper's report. What must hold is the direction of the update: on the same samples,
# repeated GKD steps lower the KL estimate to the teacher.
@pytest.mark.parametrize("seed", [0, 1])
def test_gkd_lowers_its_kl_to_the_teacher(seed):
    losses = gkd_losses(FLIP, seed)
    assert losses[-1] < KL_DROP * losses[0], losses


def test_flipped_grpo_does_not_learn():
    start, end, values = train(build("grpo", flip=True), 0, "train/reward/mean")
    assert end - start < MARGIN, values


def test_flipped_gkd_does_not_lower_its_kl():
    losses = gkd_losses(True, 0)
    assert losses[-1] >= KL_DROP * losses[0], losses
    assert torch.isfinite(torch.tensor(losses)).all()
