"""Evaluation: accuracy per subset and mean, mean@n and unbiased pass@k, reduced with torchmetrics."""

from __future__ import annotations

import math
import warnings
from typing import Literal

import torch
from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_info
from torchmetrics import MeanMetric

from rlad_pl.distributed import real_rows


def pass_at_k(n: int, c: torch.Tensor, k: int) -> torch.Tensor:
    """Unbiased ``pass@k = 1 - C(n - c, k) / C(n, k)`` per problem, ``n`` samples, ``c`` correct."""
    values = [1.0 - math.comb(n - int(ci), k) / math.comb(n, k) for ci in c.tolist()]
    return torch.tensor(values, dtype=torch.float32, device=c.device)


class Evaluation(Callback):
    """Aggregates the RL module's ``validation_step`` / ``test_step`` outputs and logs them.

    Tags (``<stage>`` is ``val`` or ``test``; one dataloader per subset, named by the datamodule's
    ``val_subset_names`` / ``test_subset_names``): ``<stage>/accuracy/<subset>`` and
    ``<stage>/accuracy/mean`` (greedy decoding, mean over subsets like the paper's "Avg");
    ``<stage>/mean@<n>`` and ``<stage>/pass@<k>`` (``n`` samples per problem at the module's
    ``evaluation.temperature`` / ``evaluation.top_p``; mean over subsets, per subset under ``/<subset>``).
    Values are torchmetrics ``MeanMetric``\\ s, reduced over all ranks under DDP. The sanity
    pass before training is logged too (at step 0 with ``trainer.num_sanity_val_steps: -1``,
    the whole validation set): the accuracy before training.

    Args:
        pass_k: the ``k`` values of ``pass@k`` (each ``<= evaluation.samples``); ``None`` =
            ``[n]`` (``pass@1`` would equal ``mean@n``).
        subset_tags: ``auto``: the per-subset tags only with two or more subsets (with one they
            repeat the means); ``always``: also with one.
    """

    def __init__(self, pass_k: list[int] | None = None,
                 subset_tags: Literal["auto", "always"] = "auto") -> None:
        self.pass_k = pass_k
        self.subset_tags = subset_tags
        self._metrics: dict[str, MeanMetric] = {}

    def _start(self, trainer, pl_module) -> None:
        """One metric per (family, subset), created identically on every rank."""
        settings = pl_module.evaluation  # the module's EvaluationSettings
        families = ["accuracy"] if settings.greedy else []
        n = settings.samples
        if n > 0:
            families += [f"mean@{n}"] + [f"pass@{k}" for k in self._ks(n)]
        self._metrics = {f"{family}/{subset}": MeanMetric().to(pl_module.device)
                         for family in families for subset in self._subset_names(trainer)}

    def _ks(self, n: int) -> list[int]:
        return [k for k in (self.pass_k or [n]) if 1 <= k <= n]

    @staticmethod
    def _subset_names(trainer) -> list[str]:
        loaders = trainer.test_dataloaders if trainer.testing else trainer.val_dataloaders
        count = len(loaders) if isinstance(loaders, (list, tuple)) else 1
        attr = "test_subset_names" if trainer.testing else "val_subset_names"
        names = list(getattr(trainer.datamodule, attr, None) or [])
        return names if len(names) == count else [f"set{i}" for i in range(count)]

    def _batch_end(self, trainer, outputs, batch_idx: int, dataloader_idx: int) -> None:
        subset = self._subset_names(trainer)[dataloader_idx]
        loaders = trainer.test_dataloaders if trainer.testing else trainer.val_dataloaders
        loader = loaders[dataloader_idx] if isinstance(loaders, (list, tuple)) else loaders
        real = real_rows(loader, batch_idx, len(outputs["records"]))  # DistributedSampler pads
        if real is not None:
            outputs = {k: v[real.to(v.device)] for k, v in outputs.items() if torch.is_tensor(v)}
        if "greedy_correct" in outputs:
            self._metrics[f"accuracy/{subset}"].update(outputs["greedy_correct"].float())
        if "sampled_correct" in outputs:
            sampled = outputs["sampled_correct"]
            n = sampled.shape[1]
            self._metrics[f"mean@{n}/{subset}"].update(sampled.float().mean(1))
            for k in self._ks(n):
                self._metrics[f"pass@{k}/{subset}"].update(pass_at_k(n, sampled.sum(1), k))

    def _epoch_end(self, trainer, pl_module, stage: str) -> None:
        subsets = self._subset_names(trainer)
        values: dict[str, float] = {}
        with warnings.catch_warnings():  # a subset without samples computes nan with a warning
            warnings.simplefilter("ignore")
            for name in sorted(self._metrics):  # same order on every rank: collective sync
                value = float(self._metrics[name].compute())
                if not math.isnan(value):
                    values[f"{stage}/{name}"] = value
        self._metrics = {}
        averages = {}
        for family in sorted({key.split("/")[1] for key in values}):
            per_subset = [values[f"{stage}/{family}/{s}"] for s in subsets
                          if f"{stage}/{family}/{s}" in values]
            key = f"{stage}/{family}/mean" if family == "accuracy" else f"{stage}/{family}"
            averages[key] = sum(per_subset) / len(per_subset)
        if len(subsets) == 1 and self.subset_tags == "auto":  # the per-subset cards would repeat
            values = {}
        values.update(averages)
        if not values:
            return
        if trainer.sanity_checking:  # Lightning discards logs of the sanity pass: write directly
            for logger in trainer.loggers:
                logger.log_metrics(values, step=trainer.global_step)
        else:
            for key, value in values.items():
                pl_module.log(key, value, prog_bar=key == f"{stage}/accuracy/mean")
            # x-axis = optimizer steps done, as the training scalars, samples and checkpoints
            pl_module.log("step", float(trainer.global_step))
        summary = "  ".join(f"{k}={v:.3f}" for k, v in averages.items())
        rank_zero_info(f"[{stage} @ step {trainer.global_step}] {summary}")

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._start(trainer, pl_module)

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self._start(trainer, pl_module)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                                dataloader_idx=0) -> None:
        self._batch_end(trainer, outputs, batch_idx, dataloader_idx)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                          dataloader_idx=0) -> None:
        self._batch_end(trainer, outputs, batch_idx, dataloader_idx)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        self._epoch_end(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._epoch_end(trainer, pl_module, "test")
