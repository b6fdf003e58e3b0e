"""One small RL run for tests/test_distributed.py, launched as a script so that Lightning's own
subprocess launcher starts the other ranks (``devices=2``, CPU, gloo).

    python tests/distributed_run.py {ddp,fsdp,single} OUT [--steps N] [--resume] [--replay DIR]

Writes under OUT: ``rank<r>.pt`` (per step: prompts seen, a parameter digest; the rollouts),
``final.pt`` (the full student state dict on rank 0), ``test.json`` (greedy test accuracy),
``hf_model/`` (HFExport) and ``checkpoints/``. ``single --replay DIR`` runs one process on the
union of both ranks' prompts and replays the rollouts the distributed run sampled, so the
update sees exactly the same data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import torch
from lightning.pytorch import Callback, Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_module_fixtures import ParityTask

from rlad_pl.callbacks import Evaluation, HFExport
from rlad_pl.data import PromptDataModule
from rlad_pl.distributed import FSDP2Strategy, full_state_dict
from rlad_pl.module import EvaluationSettings, RLADModule
from rlad_pl.objectives import TRRD
from rlad_pl.optim import Optimization
from rlad_pl.rollout import Rollout, SamplingSettings

PROMPTS_PER_RANK = 2


class HalfParityTask(ParityTask):
    """Parity reward on about half of the puzzles and 0 on the rest (groups without reward
    variance), so the ranks keep different numbers of completions."""

    def score(self, completion: str, record: dict) -> dict:
        if hashlib.md5(repr(sorted(record.items())).encode()).digest()[0] % 2:
            return super().score(completion, record)
        return {"total": 0.0, "parity": 0.0, "correct": False}


def merge(rollouts: list[Rollout], pad_id: int) -> Rollout:
    """Rank rollouts stacked in rank order, prompts left padded and completions right padded to
    common widths (positions follow the attention mask, so log-probs are unchanged)."""
    P = max(r.prompt_length for r in rollouts)
    C = max(r.completion_ids.shape[1] for r in rollouts)

    def pad(x, left, right, value):
        return torch.nn.functional.pad(x, (left, right), value=value)

    parts = {"sequences": [], "attention_mask": [], "completion_ids": [], "completion_mask": []}
    for r in rollouts:
        left, right = P - r.prompt_length, C - r.completion_ids.shape[1]
        parts["sequences"].append(pad(r.sequences, left, right, pad_id))
        parts["attention_mask"].append(pad(r.attention_mask, left, right, 0))
        parts["completion_ids"].append(pad(r.completion_ids, 0, right, pad_id))
        parts["completion_mask"].append(pad(r.completion_mask, 0, right, 0))
    return Rollout(prompt_length=P, texts=[t for r in rollouts for t in r.texts],
                   truncated=torch.cat([r.truncated for r in rollouts]),
                   **{k: torch.cat(v) for k, v in parts.items()})


class Module(RLADModule):
    """Records its training rollouts, or replays recorded ones (``replay``)."""

    replay: list[Rollout] | None = None

    def rollout(self, batch, sampling, on_group_done=None):
        if self.trainer.training and self.replay is not None:
            return self.replay[self.rollouts_done]
        out = super().rollout(batch, sampling, on_group_done)
        if self.trainer.training:
            self.recorded.append(out)
        return out

    def score(self, rollout, records):
        scores = super().score(rollout, records)
        if self.trainer.training:
            self.rewards.append([s["total"] for s in scores])
        return scores


class Recorder(Callback):
    """Per step: the prompts this rank trained on and a digest of its (local) parameters."""

    def __init__(self) -> None:
        self.steps: list[dict] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        local = [p.to_local() if hasattr(p, "to_local") else p for p in pl_module.student.parameters()]
        digest = torch.cat([p.detach().flatten().double() for p in local])
        self.steps.append({"step": trainer.global_step, "prompts": list(batch["prompts"]),
                           "param_sum": float(digest.sum()), "param_sq": float((digest ** 2).sum())})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["ddp", "fsdp", "single"])
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--replay")
    parser.add_argument("--keep-zero-variance", action="store_true")
    parser.add_argument("--micro-batch-size", type=int)
    parser.add_argument("--half-parity", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    torch.set_num_threads(1)
    seed_everything(0, workers=True)
    world = 1 if args.mode == "single" else 2
    module = Module(student="tiny-kk-student", teacher="tiny-kk-teacher", objective=TRRD(),
                    sampling=SamplingSettings(num_samples=4, max_new_tokens=10),
                    evaluation=EvaluationSettings(samples=0), optimization=Optimization(lr=1e-3),
                    drop_zero_variance_groups=not args.keep_zero_variance,
                    micro_batch_size=args.micro_batch_size)
    module.recorded, module.rewards = [], []
    if args.replay:
        ranks = [torch.load(Path(args.replay) / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
        pad_id = module.tokenizer.pad_token_id
        module.replay = [merge([ranks[0]["rollouts"][i], ranks[1]["rollouts"][i]], pad_id)
                         for i in range(len(ranks[0]["rollouts"]))]
    task = HalfParityTask(people=(3, 4)) if args.half_parity else ParityTask(people=(3, 4))
    data = PromptDataModule(task=task, tokenizer="tiny-kk-student",
                            train_size=64, val_size_per_subset=3, test_size_per_subset=3,
                            prompts_per_step=PROMPTS_PER_RANK * (2 if args.replay else 1), seed=0)
    strategy = {"ddp": "ddp", "fsdp": FSDP2Strategy(), "single": "auto"}[args.mode]
    recorder = Recorder()
    trainer = Trainer(accelerator="cpu", devices=world, strategy=strategy, max_steps=args.steps,
                      logger=False, enable_progress_bar=False, enable_model_summary=False,
                      num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=str(out),
                      callbacks=[recorder, Evaluation(), HFExport(str(out / "hf_model")),
                                 ModelCheckpoint(dirpath=str(out / "checkpoints"),
                                                 save_last=True, every_n_train_steps=1)])
    trainer.fit(module, datamodule=data, ckpt_path="last" if args.resume else None)
    rank = trainer.global_rank
    torch.save({"steps": recorder.steps, "rollouts": module.recorded, "rewards": module.rewards,
                "global_step": trainer.global_step}, out / f"rank{rank}.pt")
    state = full_state_dict(trainer, module, module.student)
    if trainer.is_global_zero:
        torch.save(state or module.student.state_dict(), out / "final.pt")
    results = trainer.test(module, datamodule=data, verbose=False)
    if trainer.is_global_zero:
        (out / "test.json").write_text(json.dumps({k: float(v) for k, v in results[0].items()}))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
