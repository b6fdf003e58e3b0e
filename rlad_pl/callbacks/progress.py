"""A log you can follow: a step-based progress bar in a terminal, plain lines elsewhere.

Both show the same numbers: optimizer steps done out of ``trainer.max_steps``, the step's mean
reward and accuracy, the latest validation accuracy, seconds per step and the time left.
``rlad-pl`` uses :class:`StepProgressBar` in place of Lightning's default bar (whose ``Epoch
0/-2`` means nothing for an endless prompt stream); :class:`ProgressLog` is listed in the
configs and prints one line every ``every_n_steps`` steps when stdout is not a terminal (nohup,
SLURM, CI), where a progress bar would only write carriage returns into the file.
"""

from __future__ import annotations

import sys
import time
from typing import Literal

from lightning.pytorch import Callback
from lightning.pytorch.callbacks import TQDMProgressBar

from rlad_pl.errors import ConfigError

#: (key in ``trainer.callback_metrics``, short name, format) of what both views show.
SHOWN = (
    ("train/reward/mean", "reward", "{:+.3f}"),
    ("train/accuracy", "acc", "{:.3f}"),
    ("val/accuracy/mean", "val_acc", "{:.3f}"),
    ("time/step_s", "s/step", "{:.2f}"),
)


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        return False


def shown_values(trainer) -> dict[str, str]:
    """The logged numbers both views show, formatted (absent ones left out)."""
    out = {}
    metrics = trainer.callback_metrics
    for key, name, fmt in SHOWN:
        if key in metrics:
            out[name] = fmt.format(float(metrics[key]))
    return out


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class StepProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar counting optimizer steps (``12/100``) with reward, accuracy,
    validation accuracy and seconds per step; no ``v_num``. Disabled when stdout is not a
    terminal (:class:`ProgressLog` prints lines there)."""

    def __init__(self, refresh_rate: int = 1) -> None:
        super().__init__(refresh_rate=refresh_rate)
        if not _stdout_is_terminal():
            self.disable()

    @property
    def train_description(self) -> str:
        return "step"

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = dict(super().get_metrics(trainer, pl_module))
        metrics.pop("v_num", None)
        for key in ("reward", "acc", "val/accuracy/mean"):  # the module's prog_bar copies
            metrics.pop(key, None)
        return {**shown_values(trainer), **metrics}

    def on_train_epoch_start(self, trainer, *_) -> None:
        bar = self.train_progress_bar
        bar.reset(total=trainer.max_steps if trainer.max_steps and trainer.max_steps > 0
                  else None)
        bar.initial = bar.n = trainer.global_step  # rate and ETA count this run's steps only
        bar.set_description(self.train_description)
        bar.unit = "step"
        bar.refresh()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        bar = self.train_progress_bar
        if bar is None or bar.disable:
            return
        if trainer.global_step % self.refresh_rate == 0 or trainer.global_step == bar.total:
            bar.n = trainer.global_step
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            bar.refresh()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        bar = self.train_progress_bar
        if not bar.disable:
            bar.set_postfix(self.get_metrics(trainer, pl_module))


class ProgressLog(Callback):
    """One plain line every ``every_n_steps`` optimizer steps, e.g.::

        step 20/100 (20%)  reward +0.412  acc 0.219  val_acc 0.285  s/step 5.31  ETA 7:28

    ``ETA`` extrapolates this run's mean time per step (validation included). Rank 0 only.

    Args:
        every_n_steps: print every this many optimizer steps (and after the last one).
        when: ``auto`` (only when stdout is not a terminal: nohup, SLURM, CI), ``always``,
            ``never``.
    """

    def __init__(self, every_n_steps: int = 10,
                 when: Literal["auto", "always", "never"] = "auto") -> None:
        if not isinstance(every_n_steps, int) or every_n_steps < 1:
            raise ConfigError(f"ProgressLog every_n_steps={every_n_steps!r}: must be an "
                              "integer >= 1")
        if when not in ("auto", "always", "never"):
            raise ConfigError(f"ProgressLog when={when!r}: must be one of auto, always, never")
        self.every_n_steps = every_n_steps
        self.when = when
        self._start_time: float | None = None
        self._start_step = 0

    @property
    def active(self) -> bool:
        return self.when == "always" or (self.when == "auto" and not _stdout_is_terminal())

    def on_train_start(self, trainer, pl_module) -> None:
        self._start_time = time.perf_counter()
        self._start_step = trainer.global_step

    def line(self, trainer) -> str:
        step, total = trainer.global_step, trainer.max_steps
        head = f"step {step}"
        if total and total > 0:
            head += f"/{total} ({100 * step // total}%)"
        parts = [head] + [f"{name} {value}" for name, value in shown_values(trainer).items()]
        if self._start_time is not None:
            elapsed = time.perf_counter() - self._start_time
            parts.append(f"elapsed {_clock(elapsed)}")
            done = step - self._start_step
            if total and total > 0 and done > 0:
                parts.append(f"ETA {_clock(elapsed / done * (total - step))}")
        return "  ".join(parts)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        last = bool(trainer.max_steps) and step >= trainer.max_steps
        if not self.active or not trainer.is_global_zero:
            return
        if step % self.every_n_steps == 0 or last:
            print(self.line(trainer), flush=True)
