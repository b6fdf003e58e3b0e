"""A few prompt / completion / reward triples of the latest rollout, as TensorBoard text."""

from __future__ import annotations

from lightning.pytorch import Callback


class SampleLogger(Callback):
    """Writes the RL module's ``last_samples`` under the text tag ``samples/train``.

    Args:
        every_n_steps: log every this many training steps (rollouts).
    """

    def __init__(self, every_n_steps: int = 50) -> None:
        self.every_n_steps = every_n_steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        samples = getattr(pl_module, "last_samples", None)
        if not samples or pl_module.rollouts_done % self.every_n_steps != 1 % self.every_n_steps:
            return
        rows = [f"**reward {s['reward']:+.2f} ({'correct' if s['correct'] else 'wrong'})**  \n"
                f"prompt: `{s['prompt']}`  \ncompletion: `{s['completion']}`" for s in samples]
        for logger in trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_text"):
                experiment.add_text("samples/train", "\n\n".join(rows), trainer.global_step)
