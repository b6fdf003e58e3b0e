"""The TensorBoard layout names real tags, descriptions reach the event files, histograms and
the HPARAMS session are written."""

import re
from types import SimpleNamespace

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from rlad_pl.callbacks.tensorboard import (
    LAYOUT,
    TensorBoardLayout,
    describe,
    flat_hparams,
    headline_copy,
)
from rlad_pl.module import METRICS


def concrete_tags():
    return {t.replace("<component>", "format").replace("<subset>", "people3")
            .replace("<n>", "4").replace("<k>", "4") for t in METRICS}


def test_every_chart_matches_a_documented_tag():
    tags = concrete_tags()
    for category, charts in LAYOUT.items():
        for title, patterns in charts.items():
            for pattern in patterns:
                assert any(re.search(pattern, tag) for tag in tags), (category, title, pattern)


def test_headline_has_reward_accuracy_and_pass_at_k():
    headline = [p for patterns in next(iter(LAYOUT.values())).values() for p in patterns]
    for tag in ("train/reward/mean", "train/accuracy", "val/accuracy/mean", "val/pass@4"):
        assert any(re.search(p, tag) for p in headline), tag


def test_headline_copies_open_time_series():
    """TIME SERIES sorts tag groups (the text before the first /) by name and expands the first
    two: the headline copies must form the first group of every documented tag (histograms
    included), and each copy is documented."""
    tags = concrete_tags() | {"hist/train/reward", "hist/train/ratio"}
    copies = {tag: headline_copy(tag) for tag in tags if headline_copy(tag)}
    assert set(copies) == {"train/reward/mean", "train/accuracy", "val/accuracy/mean",
                           "val/pass@4"}
    assert all(copy in tags for copy in copies.values())  # documented in METRICS
    groups = sorted({tag.split("/", 1)[0] for tag in tags if not tag.startswith("samples/")})
    assert groups[0] == "headline" and not any(g[0].isdigit() for g in groups), groups
    assert headline_copy("val/pass@4/people3") is None  # per-subset tags are not copied


def test_shared_teacher_tag_is_documented():
    assert "train/teacher/log_ratio_mean" in METRICS


def test_describe_fills_templates():
    assert describe("train/reward/mean") == METRICS["train/reward/mean"]
    assert describe("val/accuracy/people5") == METRICS["val/accuracy/<subset>"]
    assert describe("val/pass@8/people3") == METRICS["val/pass@<k>"]
    assert describe("no/such/tag") is None


def test_flat_hparams_plain_values():
    flat = flat_hparams({"objective": "TRRD", "objective_args": {"alpha": 0.5, "clip": None},
                         "optimization": {"lr": 1e-4, "betas": (0.9, 0.99)}, "seed": 0})
    assert flat == {"objective": "TRRD", "objective.alpha": 0.5, "objective.clip": "None",
                    "optimization.lr": 1e-4, "optimization.betas": "(0.9, 0.99)", "seed": 0}


def test_descriptions_histograms_and_hparams_reach_the_event_file(tmp_path, monkeypatch):
    from lightning.pytorch.loggers import TensorBoardLogger

    logger = TensorBoardLogger(str(tmp_path), name="run", default_hp_metric=False)
    writer = logger.experiment
    assert isinstance(writer, SummaryWriter)
    trainer = SimpleNamespace(loggers=[logger], global_step=10,
                              callback_metrics={"val/accuracy/mean": torch.tensor(0.4),
                                                "step": torch.tensor(10.0)})
    module = SimpleNamespace(
        hparams={"objective": "TRRD", "objective_args": {"alpha": 0.5}},
        last_histograms={"train/reward": torch.tensor([1.0, -1.0, 3.0])})
    callback = TensorBoardLayout(histogram_every_n_steps=5)
    callback.setup(trainer, module, "fit")
    writer.add_scalar("train/reward/mean", 0.5, 1)
    writer.add_scalar("train/reward/mean", 0.7, 2)
    writer.add_scalar("val/accuracy/mean", 0.4, 10)
    callback.on_train_batch_end(trainer, module, None, None, 9)
    callback.on_fit_end(trainer, module)
    writer.flush()
    events = EventAccumulator(logger.log_dir)
    events.Reload()
    assert [e.value for e in events.Scalars("train/reward/mean")] == [0.5, 0.699999988079071]
    assert [(e.step, e.value) for e in events.Scalars("headline/train_reward")] == \
        [(e.step, e.value) for e in events.Scalars("train/reward/mean")]
    assert [e.value for e in events.Scalars("headline/val_accuracy")] == [0.4000000059604645]
    assert events.SummaryMetadata("train/reward/mean").summary_description == \
        METRICS["train/reward/mean"]
    assert [h.step for h in events.Histograms("hist/train/reward")] == [10]
    plugins = events.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in plugins and "_hparams_/session_start_info" in plugins
    layout = events.PluginTagToContent("custom_scalars")
    assert layout
