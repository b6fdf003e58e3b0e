"""The optimisation settings of the RL module and the optimizer + schedule they build."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from rlad_pl.errors import ConfigError


@dataclass(frozen=True)
class Optimization:
    """AdamW with linear warm-up, then a constant or cosine learning rate.

    Attributes:
        lr: AdamW learning rate (> 0).
        weight_decay: AdamW weight decay.
        betas: AdamW betas.
        warmup_steps: linear warm-up in optimizer steps.
        lr_schedule: after warm-up: ``constant`` or ``cosine`` (to ``min_lr_ratio * lr`` at
            ``trainer.max_steps``).
        min_lr_ratio: final lr of the cosine schedule as a fraction of ``lr``.
        gradient_clip_val: clip of the global gradient norm (``None`` = measure only).
    """

    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 0
    lr_schedule: Literal["constant", "cosine"] = "constant"
    min_lr_ratio: float = 0.1
    gradient_clip_val: float | None = 1.0

    def validate(self, prefix: str = "model.init_args.optimization") -> None:
        """Raise a one-line :class:`ConfigError` for a bad value."""
        checks = [
            ("lr", self.lr > 0, "must be > 0"),
            ("weight_decay", self.weight_decay >= 0, "must be >= 0"),
            ("betas", all(0 <= b < 1 for b in self.betas), "both must lie in [0, 1)"),
            ("warmup_steps", self.warmup_steps >= 0, "must be >= 0"),
            ("min_lr_ratio", 0 <= self.min_lr_ratio <= 1, "must lie in [0, 1]"),
            ("gradient_clip_val", self.gradient_clip_val is None or self.gradient_clip_val > 0,
             "must be > 0 or null (measure only)"),
        ]
        for key, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"{prefix}.{key}={getattr(self, key)!r}: {allowed}")

    def build(self, parameters, total_steps: int | None) -> dict:
        """``configure_optimizers``' return value: AdamW and its per-step schedule."""
        import torch  # here, so the CLI's pre-flight check validates without importing torch

        optimizer = torch.optim.AdamW(parameters, lr=self.lr, betas=tuple(self.betas),
                                      weight_decay=self.weight_decay)

        def factor(step: int) -> float:
            if step < self.warmup_steps:
                return (step + 1) / self.warmup_steps
            if (self.lr_schedule == "constant" or total_steps is None
                    or total_steps <= self.warmup_steps):
                return 1.0
            progress = min(1.0, (step - self.warmup_steps) / (total_steps - self.warmup_steps))
            cosine = 0.5 * (1 + math.cos(math.pi * progress))
            return self.min_lr_ratio + (1 - self.min_lr_ratio) * cosine

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
