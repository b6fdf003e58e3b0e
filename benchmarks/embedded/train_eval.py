"""Train one SFT config and measure it (used for the embedded-model search; needs no
jsonargparse): fit, greedy test accuracy per level, reward variance of sampled groups, export.

python benchmarks/embedded/train_eval.py --config configs/sft_student.yaml --out runs/s1 \
    --set trainer.max_steps=300 --variance 64
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.pytorch.loggers import CSVLogger

from rlad_pl.evaluation import group_signal


def build(spec: dict):
    module, _, name = spec["class_path"].rpartition(".")
    return getattr(importlib.import_module(module), name)(**spec.get("init_args", {}))


def set_key(cfg: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    for key in path:
        cfg = cfg.setdefault(key, {})
    cfg[last] = value


class History(L.Callback):
    def __init__(self):
        self.rows = []

    def on_validation_end(self, trainer, pl_module):
        row = {k: round(float(v), 4) for k, v in trainer.callback_metrics.items()
               if k.startswith("val/")}
        self.rows.append({"step": trainer.global_step, "time": round(time.time() - T0, 1), **row})
        print(json.dumps(self.rows[-1]), flush=True)


class TimeBudget(L.Callback):
    """Sets ``max_steps`` after ``probe`` steps so that training ends about ``seconds`` after it
    started (the learning-rate schedule follows), instead of a time cap cutting the schedule."""

    def __init__(self, seconds: float, probe: int = 150):
        self.seconds, self.probe = seconds, probe

    def on_train_start(self, trainer, pl_module):
        self.start = time.time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.probe:
            per_step = (time.time() - self.start) / self.probe
            steps = int(self.seconds / per_step)
            trainer.fit_loop.epoch_loop.max_steps = min(trainer.max_steps, steps)
            print(json.dumps({"budget_steps": trainer.max_steps, "s_per_step": per_step}),
                  flush=True)


def reward_variance(module, records: list[dict], samples: int = 8) -> dict:
    """`group_signal` of `samples` completions at T=1: `mixed@<n>` is the share of groups whose
    completions are not all equally correct."""
    return group_signal(module.task, module.model, module.tokenizer, records,
                        num_samples=samples, max_new_tokens=module.hparams.max_new_tokens,
                        batch_size=64)


def main() -> None:
    global T0
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", nargs="*", default=[], help="dotted.key=yaml_value overrides")
    ap.add_argument("--budget", type=float, default=0,
                    help="training seconds: max_steps is set from the speed of the first steps")
    ap.add_argument("--variance", type=int, default=0, help="training prompts per level")
    args = ap.parse_args()
    cfg = yaml.safe_load(Path(args.config).read_text())
    for item in args.set:
        key, _, value = item.partition("=")
        set_key(cfg, key, yaml.safe_load(value))
    out = Path(args.out)
    set_key(cfg, "model.init_args.export_dir", str(out / "model"))
    L.seed_everything(cfg.get("seed_everything", 1))
    T0 = time.time()
    data, module = build(cfg["data"]), build(cfg["model"])
    trainer_cfg = {k: v for k, v in cfg["trainer"].items() if k != "logger"}
    history = History()
    callbacks = [history] + ([TimeBudget(args.budget)] if args.budget else [])
    trainer = L.Trainer(**trainer_cfg, logger=CSVLogger(out, name="logs"), callbacks=callbacks,
                        enable_progress_bar=False)
    trainer.fit(module, datamodule=data)
    fit_seconds = time.time() - T0
    trainer.test(module, datamodule=data, verbose=False)
    result = {"config": args.config, "overrides": args.set, "steps": trainer.global_step,
              "fit_seconds": round(fit_seconds, 1),
              "s_per_step": round(fit_seconds / max(1, trainer.global_step), 4),
              "params": sum(p.numel() for p in module.model.parameters()),
              "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
              "history": history.rows, "test": module.last_eval.get("test", {})}
    result["test_mean"] = sum(result["test"].values()) / max(1, len(result["test"]))
    if args.variance:
        train_like = [r for lv in data.hparams.levels for r in data.task.generate(
            args.variance, seed=data.hparams.seed, subset=lv)]
        result["variance"] = reward_variance(module, train_like)
    module.export(str(out / "model"))
    (out / "result.json").write_text(json.dumps(result, indent=1))
    print("RESULT", json.dumps({k: v for k, v in result.items() if k != "history"}), flush=True)


if __name__ == "__main__":
    main()
