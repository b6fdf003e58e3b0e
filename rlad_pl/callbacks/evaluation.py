"""Evaluation during fit/validate/test: the RL module's per-batch outputs reduced with
torchmetrics into the tags of `rlad_pl.evaluation.metrics` (accuracy per subset and mean,
mean@n, unbiased pass@k, malformed rates)."""

from __future__ import annotations

import math
import warnings
from typing import Literal

import torch
from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_info
from torchmetrics import MeanMetric

from rlad_pl.distributed import real_rows
from rlad_pl.evaluation.log import log_evaluation
from rlad_pl.evaluation.metrics import families, headline, problem_metrics, summarize


class Evaluation(Callback):
    """Aggregates the RL module's ``validation_step`` / ``test_step`` outputs and logs them.

    Tags (``<stage>`` is ``val`` or ``test``; one dataloader per subset, named by the datamodule's
    ``val_subset_names`` / ``test_subset_names``): ``<stage>/accuracy/<subset>`` and
    ``<stage>/accuracy/mean`` (greedy decoding, mean over subsets like the paper's "Avg");
    ``<stage>/mean@<n>`` and ``<stage>/pass@<k>`` (``n`` samples per problem at the module's
    ``evaluation.temperature`` / ``evaluation.top_p``; mean over subsets, per subset under
    ``/<subset>``); ``<stage>/malformed/<subset>``, ``<stage>/malformed/mean`` and
    ``<stage>/malformed@<n>`` (share of greedy / sampled answers that could not be read) when the
    module reports them.
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
        names = families(settings.greedy, settings.samples, self.pass_k)
        self._metrics = {f"{family}/{subset}": MeanMetric().to(pl_module.device)
                         for family in names for subset in self._subset_names(trainer)}

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
        keys = ("greedy_correct", "sampled_correct", "greedy_malformed", "sampled_malformed")
        values = problem_metrics(**{k: outputs[k] for k in keys if k in outputs},
                                 pass_k=self.pass_k)
        for family, per_problem in values.items():
            metric = self._metrics.get(f"{family}/{subset}")
            if metric is not None:
                metric.update(per_problem)

    def _epoch_end(self, trainer, pl_module, stage: str) -> None:
        per_subset: dict[str, dict[str, float]] = {}
        with warnings.catch_warnings():  # a subset without samples computes nan with a warning
            warnings.simplefilter("ignore")
            for name in sorted(self._metrics):  # same order on every rank: collective sync
                value = float(self._metrics[name].compute())
                family, subset = name.rsplit("/", 1)
                if not math.isnan(value):
                    per_subset.setdefault(subset, {})[family] = value
        self._metrics = {}
        subsets = self._subset_names(trainer)
        tags = summarize(per_subset, subsets)
        values = {f"{stage}/{tag}": value for tag, value in tags.items()}
        averages = {f"{stage}/{tag}": value for tag, value in headline(tags).items()}
        if len(subsets) == 1 and self.subset_tags == "auto":  # the per-subset cards would repeat
            values = averages
        if not values:
            return
        log_evaluation(pl_module, values, prog_bar={f"{stage}/accuracy/mean"})
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
