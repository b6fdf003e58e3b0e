"""Shared helpers of the RL-module tests: small models, a task with varied rewards, a trainer."""

from __future__ import annotations

import functools

import torch
from lightning.pytorch import Callback, Trainer, seed_everything
from transformers import Qwen3Config, Qwen3ForCausalLM

from rlad_pl.data import PromptDataModule
from rlad_pl.models import load_tokenizer
from rlad_pl.module import EvaluationSettings, RLADModule
from rlad_pl.objectives import TRRD, Objective
from rlad_pl.optim import Optimization
from rlad_pl.rollout import SamplingSettings
from rlad_pl.tasks.knights_knaves import KnightsKnavesTask

STUDENT, TEACHER = "tiny-kk-student", "tiny-kk-teacher"


class ParityTask(KnightsKnavesTask):
    """K&K prompts with a reward every model gets varied: the parity of the completion's length
    (so updates happen whatever the weights are)."""

    def score(self, completion: str, record: dict) -> dict:
        r = float(len(completion) % 2)
        return {"total": r, "parity": r, "correct": r > 0}


class PromptRecorder(Callback):
    """Records the prompts of every training batch."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.prompts += batch["prompts"]


def tiny_module(objective: Objective | None = None, **overrides) -> RLADModule:
    """The embedded student/teacher (TRRD by default) with short completions and small groups."""
    options = {"student": STUDENT, "teacher": TEACHER, "objective": objective or TRRD(),
               "sampling": SamplingSettings(num_samples=4, max_new_tokens=12),
               "evaluation": EvaluationSettings(samples=2), "optimization": Optimization(lr=1e-3)}
    options.update(overrides)
    return RLADModule(**options)


def tiny_data(task=None, **overrides) -> PromptDataModule:
    options = {"task": task or ParityTask(people=(3, 4)), "tokenizer": STUDENT, "train_size": 64,
                   "val_size_per_subset": 2, "test_size_per_subset": 2, "prompts_per_step": 2, "seed": 0}
    options.update(overrides)
    return PromptDataModule(**options)


def tiny_trainer(max_steps: int = 2, callbacks=(), **overrides) -> Trainer:
    options = {"max_steps": max_steps, "logger": False, "enable_checkpointing": False,
                   "enable_progress_bar": False, "enable_model_summary": False, "limit_val_batches": 0,
                   "num_sanity_val_steps": 0, "accelerator": "cpu", "devices": 1}
    options.update(overrides)
    return Trainer(callbacks=list(callbacks), **options)


def fit(module: RLADModule, data=None, max_steps: int = 2, callbacks=(), ckpt_path=None,
        **trainer_options) -> Trainer:
    seed_everything(0, verbose=False)
    trainer = tiny_trainer(max_steps, callbacks, **trainer_options)
    trainer.fit(module, data or tiny_data(), ckpt_path=ckpt_path)
    return trainer


@functools.cache
def random_qwen3():
    """A random 2-layer Qwen3 on the embedded tokenizer (fast, for engine-level tests)."""
    tokenizer = load_tokenizer(STUDENT)
    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=8, tie_word_embeddings=True, bos_token_id=None,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return Qwen3ForCausalLM(config).eval(), tokenizer
