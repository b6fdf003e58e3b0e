"""GRPO must raise the reward it optimises: the embedded math student, the math task's own reward,
a handful of fixed training problems, the real module (rollout engine, advantages, objective,
optimizer). On so few problems a working policy gradient memorises them within a few dozen
steps; a sign error, a log-prob misalignment or a loss that does not reach the weights does not.
"""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Trainer, seed_everything

from rlad_pl.data import PromptDataModule
from rlad_pl.evaluation import score_records
from rlad_pl.models import load_model, load_tokenizer
from rlad_pl.module import EvaluationSettings, RLADModule
from rlad_pl.objectives import GRPO
from rlad_pl.optim import Optimization
from rlad_pl.rollout import SamplingSettings
from rlad_pl.tasks.math import MathTask

STUDENT = "tiny-math-student"


class FixedProblems(MathTask):
    """The math task whose training split is always the same few problems (no evaluation split)."""

    def __init__(self, records: list[dict]):
        super().__init__(ops=(1,))
        self.records = records

    def generate(self, count, *, seed, subset=None, exclude=None):
        return [dict(r) for r in self.records] if count else []


def expected_reward(task, model, tokenizer, records, samples: int = 64) -> float:
    """Mean reward of ``samples`` completions per problem at temperature 1 (fixed seed)."""
    torch.manual_seed(1234)
    scores = score_records(task, model, tokenizer, records, num_samples=samples, temperature=1.0,
                           max_new_tokens=48)
    return sum(s["total"] for group in scores for s in group) / (samples * len(records))


def train_grpo(records, steps: int, **overrides) -> tuple[float, float]:
    task = FixedProblems(records)
    tokenizer = load_tokenizer(STUDENT)
    before = expected_reward(task, load_model(STUDENT).eval(), tokenizer, records)
    options = {"student": STUDENT, "teacher": None, "objective": GRPO(),
               "sampling": SamplingSettings(num_samples=8, temperature=1.0, max_new_tokens=48),
               "optimization": Optimization(lr=1e-3, warmup_steps=0),
               "evaluation": EvaluationSettings(samples=0), "seed": 0}
    options.update(overrides)
    module = RLADModule(**options)
    data = PromptDataModule(task=task, tokenizer=STUDENT, train_size=len(records),
                            val_size_per_subset=0, test_size_per_subset=0,
                            prompts_per_step=len(records), seed=0)
    seed_everything(0, verbose=False)
    trainer = Trainer(max_steps=steps, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False,
                      limit_val_batches=0, num_sanity_val_steps=0, accelerator="cpu", devices=1)
    trainer.fit(module, data)
    after = expected_reward(task, module.student.eval(), tokenizer, records)
    return before, after


@pytest.fixture(scope="module")
def problems():
    # four one-operation problems the warm start solves sometimes, not always
    return MathTask(ops=(1,)).generate(4, seed="grpo-learns")


def test_grpo_raises_its_training_reward(problems):
    before, after = train_grpo(problems, steps=25)
    assert before < 0.8, f"the problems are too easy for the test ({before:.2f})"
    assert after > before + 0.2, f"GRPO did not learn: reward {before:.3f} -> {after:.3f}"
