"""Supervised fine-tuning on (prompt, target) pairs: the embedded teacher from scratch, the weak
student warm start, and the offline-distillation baseline.

Run: `python -m rlad_pl.sft fit --config configs/sft_teacher.yaml`. Validation and test log the
tags of `rlad_pl.evaluation` for greedy decoding: `val/accuracy/<subset>`, `val/accuracy/mean`,
`val/malformed/<subset>`, `val/malformed/mean` (and `test/...`).
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from pathlib import Path

import lightning as L
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from rlad_pl.data.datamodule import build_task, check_config
from rlad_pl.errors import ConfigError
from rlad_pl.evaluation import headline, problem_metrics, score_records, score_tensors, summarize
from rlad_pl.evaluation.log import log_evaluation
from rlad_pl.models import cast_weights, load_model, load_tokenizer
from rlad_pl.models.tokenizer import save_tokenizer

M = "model.init_args"  # the config path that ConfigErrors name keys under


class SFTModule(L.LightningModule):
    """Next-token cross-entropy on target tokens only (labels are -100 elsewhere).

    Args:
        tokenizer: HF name/path or embedded short name (its vocabulary sizes a new model).
        model: a model to fine-tune (HF name/path or embedded short name), or None ...
        config: ... to build one from scratch: HF config kwargs with `model_type` (e.g. qwen3).
        task / task_kwargs: the task whose `score` gives validation accuracy.
        lr, weight_decay, betas: AdamW.
        warmup_steps, min_lr_ratio: linear warmup, then cosine decay to `min_lr_ratio * lr`.
        max_new_tokens: greedy-decoding budget for validation.
        export_dir: where the final model, tokenizer and training_record.json are written.
        export_dtype: dtype of the exported weights (bfloat16 halves the package size; the
            config keeps float32, so `from_pretrained` upcasts on load).
        seed: recorded in training_record.json (set it with `seed_everything`).
    """

    def __init__(self, tokenizer: str, model: str | None = None, config: dict | None = None,
                 task: str = "knights_knaves", task_kwargs: dict | None = None,
                 lr: float = 1e-3, weight_decay: float = 0.01,
                 betas: tuple[float, float] = (0.9, 0.95), warmup_steps: int = 100,
                 min_lr_ratio: float = 0.1, max_new_tokens: int = 400,
                 export_dir: str | None = None, export_dtype: str = "bfloat16",
                 seed: int | None = None):
        super().__init__()
        self.save_hyperparameters()
        if (model is None) == (config is None):
            raise ConfigError(f"{M}.model={model!r}, {M}.config={config!r}: give exactly one "
                              "of `model` (to fine-tune) and `config` (from scratch)")
        if config is not None:
            check_config(f"{M}.config", config,
                         isinstance(config, dict) and "model_type" in config,
                         "HF config kwargs with `model_type` (e.g. qwen3)")
        check_config(f"{M}.export_dtype", export_dtype,
                     isinstance(getattr(torch, str(export_dtype), None), torch.dtype),
                     "a torch dtype name (bfloat16, float16, float32)")
        check_config(f"{M}.lr", lr, lr > 0, "a number > 0")
        check_config(f"{M}.max_new_tokens", max_new_tokens, max_new_tokens >= 1,
                     "an integer >= 1")
        check_config(f"{M}.warmup_steps", warmup_steps, warmup_steps >= 0, "an integer >= 0")
        check_config(f"{M}.min_lr_ratio", min_lr_ratio, 0 <= min_lr_ratio <= 1,
                     "a number in [0, 1]")
        self.task = build_task(task, task_kwargs, key=M)
        self.tokenizer = load_tokenizer(tokenizer)
        if model is not None:
            self.model = load_model(model).train()  # from_pretrained returns eval mode (no dropout)
        else:
            cfg = dict(config)
            hf_config = AutoConfig.for_model(
                cfg.pop("model_type"), vocab_size=len(self.tokenizer),
                eos_token_id=self.tokenizer.eos_token_id,
                pad_token_id=self.tokenizer.pad_token_id, bos_token_id=None, **cfg)
            self.model = AutoModelForCausalLM.from_config(hf_config)
        self._start = time.time()

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self.model(**batch).loss
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/lr", self.lr_schedulers().get_last_lr()[0])
        # x-axis = optimizer steps done once this step is applied, as the RL module's
        self.log("step", float(self.global_step + 1))
        return loss

    def validation_step(self, records: list[dict], batch_idx: int, dataloader_idx: int = 0):
        self._eval_step(records, dataloader_idx, "val")

    def test_step(self, records: list[dict], batch_idx: int, dataloader_idx: int = 0):
        self._eval_step(records, dataloader_idx, "test")

    def _eval_step(self, records: list[dict], dataloader_idx: int, stage: str) -> None:
        """Greedy completions of one batch (one subset per dataloader), scored by the task."""
        scores = score_records(self.task, self.model, self.tokenizer, records,
                               max_new_tokens=self.hparams.max_new_tokens)
        correct, malformed = score_tensors(self.task, scores)
        values = problem_metrics(correct[:, 0], greedy_malformed=malformed[:, 0])
        per_subset = self._eval.setdefault(self.task.subset(records[0]), {})
        for family, per_problem in values.items():
            per_subset.setdefault(family, []).append(per_problem)

    def on_validation_epoch_start(self) -> None:
        self._eval: dict[str, dict[str, list[torch.Tensor]]] = {}

    on_test_epoch_start = on_validation_epoch_start

    def _log_eval(self, stage: str) -> None:
        """Log `rlad_pl.evaluation.summarize`'s tags under `stage` (mean over problems per
        subset, then over subsets); `last_eval[stage]` is the accuracy per subset."""
        per_subset = {subset: {family: float(torch.cat(parts).double().mean())
                               for family, parts in families.items()}
                      for subset, families in self._eval.items()}
        tags = summarize(per_subset)
        log_evaluation(self, {f"{stage}/{tag}": value for tag, value in tags.items()},
                       prog_bar={f"{stage}/{tag}" for tag in headline(tags)})
        self.last_eval = {stage: {s: v["accuracy"] for s, v in per_subset.items()}}

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val")

    def on_test_epoch_end(self) -> None:
        self._log_eval("test")

    def configure_optimizers(self):
        h = self.hparams
        decay = [p for p in self.model.parameters() if p.ndim >= 2]
        no_decay = [p for p in self.model.parameters() if p.ndim < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": h.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}],
                                lr=h.lr, betas=tuple(h.betas))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, self.lr_factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def lr_factor(self, step: int) -> float:
        """Linear warmup, then cosine to ``min_lr_ratio`` at the trainer's step budget (read at
        every step, so a budget set during the run is followed)."""
        h = self.hparams
        if step < h.warmup_steps:
            return (step + 1) / h.warmup_steps
        total = max(1, int(self.trainer.estimated_stepping_batches))
        progress = min(1.0, (step - h.warmup_steps) / max(1, total - h.warmup_steps))
        return h.min_lr_ratio + (1 - h.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    def on_train_end(self) -> None:
        if self.hparams.export_dir and self.trainer.is_global_zero:
            self.export(self.hparams.export_dir)

    def export(self, path: str) -> None:
        """Save model (safetensors), tokenizer and a training record to `path`."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        self.model.generation_config.eos_token_id = self.tokenizer.eos_token_id
        self.model.generation_config.pad_token_id = self.tokenizer.pad_token_id
        self.model.save_pretrained(out, safe_serialization=True)
        cast_weights(out, self.hparams.export_dtype)
        save_tokenizer(self.tokenizer, str(out))
        record = {
            "command": " ".join(["python", *sys.argv]),
            "seed": self.hparams.seed,
            "steps": int(self.trainer.global_step),
            "train_seconds": round(time.time() - self._start, 1),
            "machine": f"{platform.node()} {platform.machine()} "
                       f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}",
            "params": sum(p.numel() for p in self.model.parameters()),
            "last_eval": getattr(self, "last_eval", {}),
        }
        (out / "training_record.json").write_text(json.dumps(record, indent=2) + "\n")
