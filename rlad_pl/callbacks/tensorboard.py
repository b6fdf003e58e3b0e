"""TensorBoard at a glance: a custom-scalars layout that tells the run's story, tag descriptions,
histograms and the HPARAMS tab.

With a :class:`~lightning.pytorch.loggers.TensorBoardLogger` (the configs' logger) this callback

- writes a CUSTOM SCALARS layout: 1 headline (train reward, train and validation accuracy,
  pass@k / mean@n), 2 distance to the teacher (the shared ``train/teacher/log_ratio_mean`` and
  each method's own diagnostics), 3 the policy update, 4 the rollouts, 5 throughput;
- attaches each tag's description from :data:`rlad_pl.module.METRICS` to its first value, so
  the SCALARS cards and TIME SERIES show what a curve means;
- writes the headline again under ``headline/`` (:data:`HEADLINE_COPIES`): TIME SERIES, the
  dashboard TensorBoard opens on, sorts tag groups by name and expands only the first two, and
  ``headline`` sorts before the run's other groups (``hist``, ``teacher``, ``time``, ``train``,
  ``val``), so its first screen is train reward, train and val accuracy and pass@k;
- every ``histogram_every_n_steps`` optimizer steps writes histograms of the module's
  ``last_histograms`` (student - teacher log-ratio and policy ratio on real tokens,
  completion lengths, rewards) under ``hist/...``;
- at the end of fit fills the HPARAMS tab: the module's hyper-parameters (objective class and
  arguments, sampling, optimisation, ...) against the final validation metrics, so runs compare
  by method, alpha, clamp form and learning rate.
"""

from __future__ import annotations

import re

from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_only

from rlad_pl.errors import ConfigError


def _exact(*tags: str) -> list[str]:
    """Custom-scalars charts take regular expressions: match these tags exactly."""
    return [f"^{re.escape(tag)}$" for tag in tags]


#: category -> chart title -> tag regexes (custom-scalars "Multiline" charts).
LAYOUT: dict[str, dict[str, list[str]]] = {
    "1. headline": {
        "reward (train)": _exact("train/reward/mean"),
        "accuracy (train, val greedy)": _exact("train/accuracy", "val/accuracy/mean"),
        "val pass@k, mean@n": [r"^val/pass@\d+$", r"^val/mean@\d+$"],
        "val accuracy per subset": [r"^val/accuracy/(?!mean$)[^/]+$"],
    },
    "2. distance to the teacher": {
        "mean l - l_T (all methods)": _exact("train/teacher/log_ratio_mean"),
        "TRRD |l - l_T|, clamp active": _exact("train/trrd/log_ratio_teacher_abs_mean",
                                               "train/trrd/clamp_active_frac"),
        "TRRD anchor vs GRPO clipping": _exact("train/trrd/anchor_stopped_frac",
                                               "train/trrd/anchor_widened_frac"),
        "KDRL / GKD KL to the teacher": _exact("train/kdrl/kd_term", "train/gkd/kl_teacher"),
    },
    "3. policy update": {
        "loss": _exact("train/loss"),
        "ratio mean, min, max": _exact("train/ratio/mean", "train/ratio/min", "train/ratio/max"),
        "clipped fractions": [r"^train/clip/.*$"],
        "entropy": _exact("train/entropy"),
        "grad norm, lr": _exact("train/grad_norm", "train/lr"),
        "KL to the reference": _exact("train/kl_ref"),
    },
    "4. rollouts": {
        "reward components": [r"^train/reward/(?!mean$|std$)[^/]+$"],
        "completion length": _exact("train/completion_len/mean", "train/completion_len/max"),
        "truncated, zero-variance groups": _exact("train/truncated_frac",
                                                  "train/zero_variance_frac"),
        "advantage std": _exact("train/advantage/std"),
    },
    "5. throughput": {
        "tokens per second": _exact("time/tokens_per_s"),
        "seconds per phase": [r"^time/.*_s$"],
        "teacher cache hit rate": _exact("teacher/cache_hit_rate"),
    },
}


#: the headline tags and their copies under ``headline/`` (module docstring)
HEADLINE_COPIES: dict[str, str] = {
    r"train/reward/mean": "headline/train_reward",
    r"train/accuracy": "headline/train_accuracy",
    r"val/accuracy/mean": "headline/val_accuracy",
    r"val/pass@(\d+)": r"headline/val_pass@\1",
}


def headline_copy(tag: str) -> str | None:
    """The ``headline/`` tag a headline tag is copied to (``None`` for other tags)."""
    for pattern, copy in HEADLINE_COPIES.items():
        if re.fullmatch(pattern, tag):
            return re.sub(pattern, copy, tag)
    return None


def describe(tag: str, table: dict[str, str] | None = None) -> str | None:
    """The description of ``tag`` from the METRICS table (templates like ``<subset>`` match any
    path element)."""
    if table is None:
        from rlad_pl.module import METRICS as table
    if tag in table:
        return table[tag]
    for template, text in table.items():
        pattern = re.sub(r"<[^>]*>", "[^/]+", re.escape(template).replace(r"\<", "<")
                         .replace(r"\>", ">"))
        # a per-subset tag (val/mean@4/people3) is described by its mean's entry
        if re.fullmatch(pattern + "(/[^/]+)?", tag) and (tag == template or "<" in template
                                                         or "@" in template):
            return text
    return None


#: the hyper-parameters the HPARAMS tab compares runs by (prefixes of the flattened names; all
#: of them stay in hparams.yaml)
HPARAMS_KEYS = ("objective", "optimization.lr", "optimization.warmup_steps", "sampling.",
                "beta", "ppo_epochs", "student", "teacher", "seed")


def flat_hparams(hparams: dict, keys: tuple[str, ...] | None = None
                 ) -> dict[str, int | float | str | bool]:
    """Plain values for the HPARAMS tab: nested dicts flattened with dots (``objective_args``
    becomes ``objective.<name>``), lists and ``None`` as text; only names starting with one
    of ``keys`` (``None``: all but LightningCLI's ``_class_path`` / ``_instantiator``)."""
    out: dict = {}

    def put(key: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                put(f"{key}.{k}", v)
        elif isinstance(value, bool | int | float | str):
            out[key] = value
        else:
            out[key] = str(value)

    for key, value in dict(hparams).items():
        put("objective" if key == "objective_args" else key, value)
    return {k: v for k, v in out.items()
            if (keys is None and not k.startswith("_")) or (keys and k.startswith(keys))}


def _tensorboard_writer(trainer):
    from lightning.pytorch.loggers import TensorBoardLogger

    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


class TensorBoardLayout(Callback):
    """Custom-scalars layout, tag descriptions, histograms, HPARAMS (module docstring).

    Args:
        histogram_every_n_steps: histograms every this many optimizer steps (0 = none).
        hparams_metrics: prefixes of the final metrics shown in the HPARAMS tab.
    """

    def __init__(self, histogram_every_n_steps: int = 10,
                 hparams_metrics: list[str] | None = None) -> None:
        if not isinstance(histogram_every_n_steps, int) or histogram_every_n_steps < 0:
            raise ConfigError(f"TensorBoardLayout histogram_every_n_steps="
                              f"{histogram_every_n_steps!r}: must be an integer >= 0 (0 = none)")
        self.histogram_every_n_steps = histogram_every_n_steps
        self.hparams_metrics = hparams_metrics or ["val/", "train/reward/mean", "train/accuracy"]
        self._described: set[str] = set()

    @rank_zero_only
    def setup(self, trainer, pl_module, stage: str) -> None:
        writer = _tensorboard_writer(trainer)
        if writer is None or getattr(writer, "_rlad_described", False):
            return
        if stage == "fit":
            writer.add_custom_scalars({category: {title: ["Multiline", tags]
                                                  for title, tags in charts.items()}
                                       for category, charts in LAYOUT.items()})
        self._attach_descriptions(writer)

    def _attach_descriptions(self, writer) -> None:
        """The first value of each described tag carries its description (TensorBoard keeps a
        tag's metadata from its first event)."""
        from torch.utils.tensorboard.summary import scalar

        original = writer.add_scalar
        described = self._described

        def write(tag, scalar_value, global_step, walltime, new_style, double_precision):
            text = None if tag in described else describe(tag)
            described.add(tag)
            if text is None:
                original(tag, scalar_value, global_step, walltime, new_style, double_precision)
                return
            summary = scalar(tag, scalar_value, new_style=new_style,
                             double_precision=double_precision)
            metadata = summary.value[0].metadata
            metadata.plugin_data.plugin_name = "scalars"  # as TensorBoard's own scalars
            metadata.summary_description = text
            writer._get_file_writer().add_summary(summary, global_step, walltime)

        def add_scalar(tag, scalar_value, global_step=None, walltime=None, new_style=False,
                       double_precision=False):
            for name in filter(None, (tag, headline_copy(tag))):
                write(name, scalar_value, global_step, walltime, new_style, double_precision)

        writer.add_scalar = add_scalar
        writer._rlad_described = True

    @rank_zero_only
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n = self.histogram_every_n_steps
        step = trainer.global_step
        if not n or (step % n != 0 and step != 1):  # step 1: the shape before any drift
            return
        writer = _tensorboard_writer(trainer)
        tensors = getattr(pl_module, "last_histograms", None) or {}
        if writer is None:
            return
        for name, values in tensors.items():
            if values is not None and values.numel() > 0:
                writer.add_histogram(f"hist/{name}", values.float(), step)

    @rank_zero_only
    def on_fit_end(self, trainer, pl_module) -> None:
        writer = _tensorboard_writer(trainer)
        if writer is None:
            return
        from torch.utils.tensorboard.summary import hparams

        metrics = {key: float(value) for key, value in trainer.callback_metrics.items()
                   if key.startswith(tuple(self.hparams_metrics)) and key != "step"
                   and getattr(value, "numel", lambda: 1)() == 1}
        if not metrics:
            return
        settings = getattr(pl_module, "settings", pl_module.hparams)  # RLADModule: components too
        experiment, start, end = hparams(flat_hparams(settings, HPARAMS_KEYS),
                                         metrics)
        file_writer = writer._get_file_writer()
        for summary in (experiment, start, end):
            file_writer.add_summary(summary, trainer.global_step)
        writer.flush()
