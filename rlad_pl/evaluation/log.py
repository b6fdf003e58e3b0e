"""Logging of evaluation tags from a LightningModule, the sanity pass before training included."""

from __future__ import annotations

from collections.abc import Collection


def log_evaluation(module, values: dict[str, float], prog_bar: Collection[str] = ()) -> None:
    """Log `values` (tag -> value) at the optimizer steps done so far, the `prog_bar` tags also on
    the progress bar. Lightning discards what the sanity pass logs, so there they go to the
    loggers directly: with ``trainer.num_sanity_val_steps: -1`` that is the accuracy at step 0,
    before training."""
    trainer = module.trainer
    if trainer.sanity_checking:
        for logger in trainer.loggers:
            logger.log_metrics(values, step=trainer.global_step)
        return
    for key, value in values.items():
        module.log(key, value, prog_bar=key in prog_bar)
    module.log("step", float(trainer.global_step))  # x-axis: optimizer steps, as training's
