"""The RL module: a few steps of fit per method, what gets loaded, numerics, config checks, resume."""

import time

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

import rlad_pl.module as module_lib
from rlad_pl.callbacks import TeacherLogprobCache
from rlad_pl.errors import ConfigError
from rlad_pl.module import EvaluationSettings
from rlad_pl.objectives import GKD, GRPO, KDRL, TRRD
from rlad_pl.optim import Optimization
from rlad_pl.rollout import SamplingSettings
from tests.test_module_fixtures import (
    TEACHER,
    PromptRecorder,
    fit,
    random_qwen3,
    tiny_data,
    tiny_module,
)


@pytest.mark.parametrize("method", ["rlad", "grpo", "kdrl", "gkd"])
def test_fit_few_steps_each_method(method):
    objective = {"rlad": TRRD, "grpo": GRPO, "kdrl": KDRL, "gkd": GKD}[method]()
    module = tiny_module(objective, teacher=None if method == "grpo" else TEACHER)
    trainer = fit(module, max_steps=2)
    assert trainer.global_step == 2 and module.rollouts_done == 2
    metrics = trainer.callback_metrics
    for tag in ("train/reward/mean", "train/loss", "train/grad_norm", "train/entropy",
                "time/rollout_s", "time/update_s", "time/tokens_per_s"):
        assert tag in metrics and torch.isfinite(metrics[tag]), tag
    if method in ("rlad", "kdrl", "gkd"):
        assert "time/teacher_s" in metrics and "teacher/cache_hit_rate" in metrics
    if method == "rlad":
        assert "train/trrd/anchor_stopped_frac" in metrics
    if method == "kdrl":
        assert "train/kdrl/kd_term" in metrics
    assert module.skipped_steps == 0


def test_parameters_change(tmp_path):
    module = tiny_module(GRPO(), teacher=None)
    trainer = fit(module, max_steps=1)
    start = module_lib.load_model(module.hparams.student).state_dict()
    assert trainer.global_step == 1
    assert any(not torch.equal(start[k], v) for k, v in module.student.state_dict().items())


@pytest.mark.parametrize("overrides", [{"objective": GRPO(), "teacher": TEACHER},
                                       {"objective": TRRD(alpha=1.0), "teacher": None}])
def test_teacher_never_loaded_or_called_without_need(monkeypatch, overrides):
    loaded = []
    real_load = module_lib.load_model
    monkeypatch.setattr(module_lib, "load_model",
                        lambda name, **kw: loaded.append(name) or real_load(name, **kw))

    def forbidden(*args, **kwargs):
        raise AssertionError("teacher log-probs requested")

    monkeypatch.setattr(TeacherLogprobCache, "logprobs", forbidden)
    module = tiny_module(**overrides)
    trainer = fit(module, max_steps=2)
    assert loaded == [module.hparams.student]
    assert "teacher" not in module.frozen
    assert not any(isinstance(cb, TeacherLogprobCache) for cb in trainer.callbacks)
    assert "time/teacher_s" not in trainer.callback_metrics


def test_reference_only_with_beta(monkeypatch):
    module = tiny_module(GRPO(), teacher=None, beta=0.05)
    trainer = fit(module, max_steps=1)
    assert "reference" in module.frozen and "train/kl_ref" in trainer.callback_metrics
    assert "time/reference_s" in trainer.callback_metrics
    no_ref = tiny_module(GRPO(), teacher=None)
    fit(no_ref, max_steps=1)
    assert "reference" not in no_ref.frozen


def test_several_epochs_and_minibatches_use_old_logprobs():
    module = tiny_module(ppo_epochs=2, minibatch_size=4)
    trainer = fit(module, max_steps=4)
    # 2 prompts x G=4 = 8 rows -> 2 minibatches x 2 epochs = 4 optimizer steps per rollout
    assert module.rollouts_done == 1 and trainer.global_step == 4
    assert "time/old_logp_s" in trainer.callback_metrics
    assert float(trainer.callback_metrics["train/ratio/max"]) != 1.0


def test_nonfinite_step_is_skipped_and_counted(monkeypatch):
    module = tiny_module(GRPO(), teacher=None)
    real_loss = module_lib.RLADModule.loss

    def nan_loss(self, *args, **kwargs):
        loss, metrics = real_loss(self, *args, **kwargs)
        return loss * float("nan"), metrics

    monkeypatch.setattr(module_lib.RLADModule, "loss", nan_loss)
    trainer = fit(module, max_steps=2)
    start = module_lib.load_model(module.hparams.student).state_dict()
    assert module.skipped_steps == 2 and float(trainer.callback_metrics["train/skipped_steps"]) == 2
    for k, v in module.student.state_dict().items():
        assert torch.equal(start[k], v), k


OBJECTIVE = "model.init_args.objective.init_args"


@pytest.mark.parametrize("build, key", [
    (lambda: tiny_module(TRRD(), teacher=None), "model.init_args.teacher=None"),
    (lambda: tiny_module(KDRL(), teacher=None), "model.init_args.teacher=None"),
    (lambda: tiny_module(GKD(), teacher=None), "model.init_args.teacher=None"),
    (lambda: tiny_module(sampling=SamplingSettings(num_samples=1)),
     "model.init_args.sampling.num_samples=1"),
    (lambda: tiny_module(sampling=SamplingSettings(num_samples=4, temperature=0.0)),
     "model.init_args.sampling.temperature=0.0"),
    (lambda: tiny_module(optimization=Optimization(lr=-1.0)),
     "model.init_args.optimization.lr=-1.0"),
    (lambda: tiny_module(evaluation=EvaluationSettings(greedy=False, samples=0)),
     "model.init_args.evaluation.greedy=False"),
    (lambda: TRRD(alpha=1.5), f"{OBJECTIVE}.alpha=1.5"),
    (lambda: TRRD(alpha=-0.1), f"{OBJECTIVE}.alpha=-0.1"),
    (lambda: GRPO(eps_low=0.0), f"{OBJECTIVE}.eps_low=0.0"),
    (lambda: TRRD(eps_high=-0.1), f"{OBJECTIVE}.eps_high=-0.1"),
    (lambda: KDRL(kd_coef=-1.0), f"{OBJECTIVE}.kd_coef=-1.0"),
    (lambda: GKD(estimator="k9"), f"{OBJECTIVE}.estimator='k9'"),
    (lambda: GRPO(aggregation="sum"), f"{OBJECTIVE}.aggregation='sum'"),
])
def test_bad_config_fails_fast(monkeypatch, build, key):
    monkeypatch.setattr(module_lib, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        build()
    message = str(err.value)
    assert message.startswith(key) and "\n" not in message
    assert time.perf_counter() - start < 5


def test_teacher_with_another_tokenizer_is_rejected(tmp_path):
    from rlad_pl.models.tokenizer import build_tokenizer

    model, _ = random_qwen3()
    other = build_tokenizer(["knights and knaves"] * 10, vocab_size=280)
    model.save_pretrained(tmp_path / "teacher")
    other.save_pretrained(tmp_path / "teacher")
    with pytest.raises(ConfigError,
                       match=r"^model.init_args.teacher=.*tokenizers differ: vocab size"):
        tiny_module(teacher=str(tmp_path / "teacher"))


def test_task_the_data_does_not_provide(monkeypatch):
    monkeypatch.setattr(module_lib, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    module = tiny_module(GRPO(), teacher=None, task="math")
    with pytest.raises(ConfigError, match=r"^model.init_args.task='math': the data provides "
                                          r"task 'knights_knaves'"):
        fit(module, max_steps=1)


def run_resumable(tmp_path, max_steps, ckpt_path=None):
    recorder = PromptRecorder()
    checkpoint = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=2, save_top_k=-1,
                                 save_last=True)
    module = tiny_module()
    fit(module, tiny_data(), max_steps=max_steps, callbacks=[recorder, checkpoint],
        enable_checkpointing=True, ckpt_path=ckpt_path)
    return module, recorder.prompts


def test_resume_gives_the_uninterrupted_run(tmp_path):
    full, full_prompts = run_resumable(tmp_path / "full", 4)
    _, first_prompts = run_resumable(tmp_path / "split", 2)
    resumed, resumed_prompts = run_resumable(tmp_path / "split", 4,
                                             ckpt_path=str(tmp_path / "split" / "last.ckpt"))
    assert first_prompts + resumed_prompts == full_prompts
    assert resumed.rollouts_done == full.rollouts_done == 4
    for name, value in full.student.state_dict().items():
        assert torch.equal(resumed.student.state_dict()[name], value), name


@pytest.mark.parametrize("aggregation", ["seq-mean-token-mean", "token-mean",
                                         "seq-mean-token-sum-norm"])
def test_micro_batches_accumulate_the_minibatch_gradient(aggregation):
    results = []
    for micro_batch_size in (None, 3):
        module = tiny_module(TRRD(aggregation=aggregation), beta=0.1,
                             micro_batch_size=micro_batch_size)
        metrics = fit(module, max_steps=1).callback_metrics
        results.append((float(metrics["train/loss"]), float(metrics["train/grad_norm"])))
    (loss, norm), (micro_loss, micro_norm) = results
    assert micro_loss == pytest.approx(loss, rel=1e-5, abs=1e-7)
    assert micro_norm == pytest.approx(norm, rel=1e-5)


def test_kv_decode_engine_trains():
    module = tiny_module(rollout_engine="kv_decode")
    trainer = fit(module, max_steps=2)
    assert trainer.global_step == 2 and "train/loss" in trainer.callback_metrics
