"""ProgressLog prints the same numbers as the bar, every N optimizer steps; the bar counts
steps and drops v_num."""

from types import SimpleNamespace

import pytest
import torch

from rlad_pl.callbacks.progress import ProgressLog, StepProgressBar, shown_values
from rlad_pl.errors import ConfigError


def fake_trainer(step: int, max_steps: int = 100, **metrics) -> SimpleNamespace:
    return SimpleNamespace(global_step=step, max_steps=max_steps, is_global_zero=True,
                           callback_metrics={k: torch.tensor(v) for k, v in metrics.items()},
                           progress_bar_metrics={}, loggers=[])


METRICS = {"train/reward/mean": 0.25, "train/accuracy": 0.5, "time/step_s": 2.0}


def test_line_every_n_steps_with_the_numbers(capsys):
    log = ProgressLog(every_n_steps=5, when="always")
    trainer = fake_trainer(0, **METRICS)
    log.on_train_start(trainer, None)
    for step in range(1, 11):
        trainer.global_step = step
        log.on_train_batch_end(trainer, None, None, None, step - 1)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["5/100", "10/100"]
    assert "reward +0.250" in lines[0] and "acc 0.500" in lines[0] and "s/step 2.00" in lines[0]
    assert "ETA" in lines[0] and "elapsed" in lines[0]


def test_last_step_is_printed_and_never_prints_nothing(capsys):
    log = ProgressLog(every_n_steps=4, when="always")
    trainer = fake_trainer(6, max_steps=6, **METRICS)
    log.on_train_batch_end(trainer, None, None, None, 5)
    assert capsys.readouterr().out.startswith("step 6/6 (100%)")
    quiet = ProgressLog(every_n_steps=1, when="never")
    quiet.on_train_batch_end(trainer, None, None, None, 5)
    assert capsys.readouterr().out == ""


def test_auto_prints_only_without_terminal(capsys):
    # pytest captures stdout: not a terminal, so "auto" is active
    assert ProgressLog(when="auto").active


@pytest.mark.parametrize("kwargs", [{"every_n_steps": 0}, {"when": "sometimes"}])
def test_bad_arguments_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        ProgressLog(**kwargs)


def test_bar_shows_steps_and_no_version_number():
    bar = StepProgressBar()
    trainer = fake_trainer(3, **METRICS, **{"val/accuracy/mean": 0.3})
    trainer.progress_bar_metrics = {"reward": 0.25, "acc": 0.5, "v_num": 1}
    shown = bar.get_metrics(trainer, None)
    assert "v_num" not in shown and "reward" in shown and shown["val_acc"] == "0.300"
    assert bar.train_description == "step"
    assert shown_values(fake_trainer(1)) == {}
