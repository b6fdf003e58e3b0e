"""Helpers of tests/rollout/test_vllm.py that run in other processes.

``RolloutRecorder`` (a callback the CLI test names in its config) records every training rollout
with the student's own log-probs next to vLLM's, and can kill the process at the start of a step.
Run as a script, ``python tests/rollout/vllm_runs.py {ddp,fsdp} OUT`` trains 2 steps under
2-process DDP or FSDP2 (Lightning starts the second rank; CPU, gloo) with ``rollout_engine="vllm"``
and writes ``OUT/rank<r>.pt``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from lightning.pytorch import Callback, Trainer, seed_everything

if __name__ == "__main__":  # run as a script: make `tests` and `rlad_pl` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rlad_pl.rollout import sequence_logprobs


def param_sum(model: torch.nn.Module) -> float:
    """Sum of all weights; FSDP2's sharded parameters are gathered (a collective)."""
    full = (p.full_tensor() if hasattr(p, "full_tensor") else p for p in model.parameters())
    return float(sum(p.detach().double().sum() for p in full))


class RolloutRecorder(Callback):
    """Per training rollout: prompts, sequences, vLLM's log-probs, the largest difference to the
    student's log-probs at that moment, the engine's weight-sync count and a parameter digest.
    Saved to ``out/step-<n>.pt`` when ``out`` is set (else kept in ``steps``).

    Args:
        out: folder of the step files (``None``: memory only).
        kill_at_step: ``os._exit(137)`` just before the rollout of this step (a killed run: the
            checkpoint of the previous step is on disk).
    """

    def __init__(self, out: str | None = None, kill_at_step: int | None = None) -> None:
        self.out = out
        self.kill_at_step = kill_at_step
        self.steps: list[dict] = []

    def setup(self, trainer, pl_module, stage: str) -> None:
        original = pl_module.rollout

        def recording_rollout(batch, sampling, **listener):
            if not trainer.training:
                return original(batch, sampling, **listener)
            step = trainer.global_step + 1
            if step == self.kill_at_step:
                os._exit(137)
            rollout = original(batch, sampling, **listener)
            with torch.no_grad():
                logp, _ = sequence_logprobs(pl_module.student, rollout.sequences,
                                            rollout.attention_mask, rollout.prompt_length,
                                            temperature=sampling.temperature)
            real = rollout.completion_mask.bool()
            record = {
                "step": step, "prompts": list(batch["prompts"]),
                "sequences": rollout.sequences.cpu(), "rollout_logp": rollout.rollout_logp.cpu(),
                "max_logp_diff": float((logp[real] - rollout.rollout_logp[real]).abs().max()),
                "syncs": pl_module.engine.syncs, "param_sum": param_sum(pl_module.student),
            }
            self.steps.append(record)
            if self.out is not None:
                Path(self.out).mkdir(parents=True, exist_ok=True)
                torch.save(record, Path(self.out) / f"step-{step}.pt")
            return rollout

        pl_module.rollout = recording_rollout


def distributed(mode: str, out: Path) -> None:
    """2 steps on 2 ranks, one engine per rank (under FSDP2 synced from the gathered student)."""
    from rlad_pl.distributed import FSDP2Strategy
    from rlad_pl.module import EvaluationSettings
    from rlad_pl.rollout import SamplingSettings
    from rlad_pl.rollout.vllm import VLLMOptions
    from tests.test_module_fixtures import tiny_data, tiny_module

    torch.set_num_threads(1)
    seed_everything(0, workers=True)
    module = tiny_module(rollout_engine="vllm",
                         sampling=SamplingSettings(num_samples=4, max_new_tokens=16),
                         evaluation=EvaluationSettings(samples=0), drop_zero_variance_groups=False,
                         vllm=VLLMOptions(kv_cache_gib=0.25, max_model_len=512))
    recorder = RolloutRecorder()
    strategy = FSDP2Strategy() if mode == "fsdp" else "ddp"
    trainer = Trainer(accelerator="cpu", devices=2, strategy=strategy, max_steps=2, logger=False,
                      enable_progress_bar=False, enable_model_summary=False,
                      enable_checkpointing=False, num_sanity_val_steps=0, limit_val_batches=0,
                      default_root_dir=str(out), callbacks=[recorder])
    trainer.fit(module, datamodule=tiny_data())
    torch.save({"steps": recorder.steps, "syncs": module.engine.syncs,
                "final_param_sum": param_sum(module.student)},
               out / f"rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["ddp", "fsdp"])
    parser.add_argument("out")
    args = parser.parse_args()
    distributed(args.mode, Path(args.out))
