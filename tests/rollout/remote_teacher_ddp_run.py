"""A 2-rank DDP run (CPU, gloo, Lightning's own launcher) with the teacher behind a server, for
tests/rollout/test_remote_teacher.py.

    python tests/rollout/remote_teacher_ddp_run.py URL OUT [--steps N]

Each rank records the ``l_T`` the cache served it; after training each rank compares them with
the local teacher's on the same rollouts and writes ``OUT/rank<r>.json`` (steps scored, rows,
max |difference|). When the server fails, the run stops (``OUT/rank<r>.error`` holds the
message) after saving ``OUT/checkpoints/last.ckpt``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch
from lightning.pytorch import Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from rlad_pl.callbacks import TeacherLogprobCache  # noqa: E402
from rlad_pl.data import PromptDataModule  # noqa: E402
from rlad_pl.models import load_model  # noqa: E402
from rlad_pl.module import EvaluationSettings, RLADModule  # noqa: E402
from rlad_pl.objectives import TRRD  # noqa: E402
from rlad_pl.optim import Optimization  # noqa: E402
from rlad_pl.rollout import SamplingSettings  # noqa: E402
from rlad_pl.rollout.remote_teacher import TeacherServer, TeacherServerError  # noqa: E402
from tests.test_module_fixtures import ParityTask  # noqa: E402


class RecordingCache(TeacherLogprobCache):
    def __init__(self) -> None:
        super().__init__()
        self.record = []

    def logprobs(self, teacher, rollout, **kwargs):
        out = super().logprobs(teacher, rollout, **kwargs)
        self.record.append((rollout, out))
        return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    out = Path(args.out)
    torch.set_num_threads(1)
    seed_everything(0, workers=True)
    module = RLADModule(student="tiny-kk-student", teacher=args.url, objective=TRRD(),
                        sampling=SamplingSettings(num_samples=4, max_new_tokens=10),
                        evaluation=EvaluationSettings(samples=0),
                        optimization=Optimization(lr=1e-3), drop_zero_variance_groups=False,
                        teacher_server=TeacherServer(retries=1, retry_wait=0.1))
    data = PromptDataModule(task=ParityTask(people=(3, 4)), tokenizer="tiny-kk-student",
                            train_size=64, val_size_per_subset=3, test_size_per_subset=3,
                            prompts_per_step=2, seed=0)
    cache = RecordingCache()
    trainer = Trainer(accelerator="cpu", devices=2, strategy="ddp", max_steps=args.steps,
                      logger=False, enable_progress_bar=False, enable_model_summary=False,
                      num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=str(out),
                      callbacks=[cache, ModelCheckpoint(dirpath=str(out / "checkpoints"),
                                                        save_last=True,
                                                        every_n_train_steps=100)])
    try:
        trainer.fit(module, datamodule=data)
    except TeacherServerError as err:
        (out / f"rank{trainer.global_rank}.error").write_text(str(err))
        return
    teacher = load_model("tiny-kk-teacher").eval()
    diff, rows = 0.0, 0
    for rollout, remote in cache.record:
        local = TeacherLogprobCache().logprobs(teacher, rollout, micro_batch_size=8)
        mask = rollout.completion_mask.bool()
        diff = max(diff, float((remote - local)[mask].abs().max()))
        rows += len(rollout.sequences)
    result = {"steps": len(cache.record), "rows": rows, "max_abs_diff": diff,
              "requests": cache.remote.requests_sent}
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
