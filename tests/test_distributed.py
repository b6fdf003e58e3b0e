"""DDP and FSDP2 with 2 CPU processes (gloo), launched by Lightning itself (tests/distributed_run.py
run as a script; ``devices=2`` makes Lightning start the second rank).

What is checked: training completes; the ranks' prompts are disjoint and together are the global
batch; DDP parameters are identical on both ranks after every step (also when the ranks keep
different numbers of completions, even none, so their micro-batch counts differ); the FSDP2 model gathered
on rank 0 equals a single-process run that replays the same rollouts on the union of the prompts
(max |difference| < 1e-4 while the weights moved by ~2e-3: AdamW amplifies reduction-order
rounding of tiny gradients); greedy test accuracy under the strategy (3 problems per subset, so
DistributedSampler pads one rank) equals single-process evaluation of the exported model;
resuming from the strategy's checkpoint (a torch.distributed.checkpoint folder under FSDP2)
continues the prompt stream and, for FSDP2, ends where an uninterrupted run ends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DistributedSampler

from rlad_pl.distributed import real_rows

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "distributed_run.py"


def launch(mode: str, out: Path, *args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(SCRIPT), mode, str(out), *args], env=env, cwd=ROOT, check=False,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]


def ranks(out: Path) -> list[dict]:
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("dist")
    out = {name: base / name for name in ("ddp", "fsdp", "fsdp3", "single")}
    launch("ddp", out["ddp"], "--steps", "2", "--micro-batch-size", "3", "--half-parity")
    launch("fsdp", out["fsdp"], "--steps", "2", "--keep-zero-variance")
    launch("single", out["single"], "--steps", "2", "--keep-zero-variance",
           "--replay", str(out["fsdp"]))
    for name in ("ddp", "fsdp"):  # keep the 2-step results, resume a copy to 3 steps
        shutil.copytree(out[name], base / f"{name}-resumed")
        out[f"{name}-resumed"] = base / f"{name}-resumed"
    launch("ddp", out["ddp-resumed"], "--steps", "3", "--micro-batch-size", "3", "--half-parity",
           "--resume")
    launch("fsdp", out["fsdp-resumed"], "--steps", "3", "--keep-zero-variance", "--resume")
    launch("fsdp", out["fsdp3"], "--steps", "3", "--keep-zero-variance")
    return out


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_ranks_see_disjoint_prompts_forming_the_global_batch(runs, mode):
    r0, r1 = ranks(runs[mode])
    assert [s["step"] for s in r0["steps"]] == [1, 2] == [s["step"] for s in r1["steps"]]
    seen = []
    for a, b in zip(r0["steps"], r1["steps"], strict=False):
        assert len(a["prompts"]) == len(b["prompts"]) == 2
        assert not set(a["prompts"]) & set(b["prompts"])
        seen += a["prompts"] + b["prompts"]
    assert len(set(seen)) == len(seen)  # no prompt twice across steps either
    if mode == "fsdp":  # the single-process run's batches are exactly the union
        single = torch.load(runs["single"] / "rank0.pt", weights_only=False)
        assert [s["prompts"] for s in single["steps"]] == [
            a["prompts"] + b["prompts"] for a, b in zip(r0["steps"], r1["steps"], strict=False)]


def test_ddp_parameters_identical_across_ranks_after_every_step(runs):
    r0, r1 = ranks(runs["ddp"])

    def kept(rewards):  # completions in groups with reward variance (the others are dropped)
        return [int((torch.tensor(x).view(-1, 4).std(1) > 0).sum()) * 4 for x in rewards]

    assert kept(r0["rewards"]) != kept(r1["rewards"])  # uneven micro-batch counts happened
    for a, b in zip(r0["steps"], r1["steps"], strict=False):
        assert (a["param_sum"], a["param_sq"]) == (b["param_sum"], b["param_sq"])
    assert r0["steps"][0]["param_sq"] != r0["steps"][1]["param_sq"]  # training moved them


def test_fsdp2_gathered_model_equals_single_process_run(runs):
    sharded = torch.load(runs["fsdp"] / "final.pt")
    single = torch.load(runs["single"] / "final.pt")
    assert sorted(sharded) == sorted(single)
    from rlad_pl.models import load_model

    initial = load_model("tiny-kk-student").state_dict()
    moved = max((sharded[k] - initial[k]).abs().max().item() for k in sharded)
    diff = max((sharded[k] - single[k]).abs().max().item() for k in sharded)
    assert moved > 5e-4 and diff < 1e-4, (moved, diff)


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_test_accuracy_equals_single_process_evaluation(runs, mode):
    import json

    from lightning.pytorch import Trainer

    from rlad_pl.callbacks import Evaluation
    from rlad_pl.data import PromptDataModule
    from rlad_pl.module import EvaluationSettings, RLADModule
    from rlad_pl.objectives import GRPO
    from rlad_pl.rollout import SamplingSettings
    from tests.distributed_run import HalfParityTask
    from tests.test_module_fixtures import ParityTask

    distributed = json.loads((runs[mode] / "test.json").read_text())
    module = RLADModule(student=str(runs[mode] / "hf_model"), teacher=None, objective=GRPO(),
                        sampling=SamplingSettings(num_samples=4, max_new_tokens=10),
                        evaluation=EvaluationSettings(samples=0))
    task = (HalfParityTask if mode == "ddp" else ParityTask)(people=(3, 4))  # as the run scored
    data = PromptDataModule(task=task, tokenizer="tiny-kk-student",
                            train_size=64, val_size_per_subset=3, test_size_per_subset=3,
                            prompts_per_step=2, seed=0)
    trainer = Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                      enable_model_summary=False, callbacks=[Evaluation()])
    single = trainer.test(module, datamodule=data, verbose=False)[0]
    assert set(distributed) == set(single)
    for key, value in single.items():
        if key == "step":  # the x-axis (optimizer steps done: 2 after the run, 0 fresh)
            continue
        assert distributed[key] == pytest.approx(float(value), abs=1e-6), key


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_resume_under_the_strategy_continues(runs, mode):
    before, after = ranks(runs[mode]), ranks(runs[f"{mode}-resumed"])
    assert after[0]["global_step"] == after[1]["global_step"] == 3
    assert [s["step"] for s in after[0]["steps"]] == [3]  # only the missing step ran
    old = {p for r in before for s in r["steps"] for p in s["prompts"]}
    new = {p for r in after for p in r["steps"][0]["prompts"]}
    assert len(new) == 4 and not old & new
    if mode == "fsdp":
        resumed = torch.load(runs["fsdp-resumed"] / "final.pt")
        straight = torch.load(runs["fsdp3"] / "final.pt")
        assert max((resumed[k] - straight[k]).abs().max().item() for k in resumed) < 1e-6


def test_real_rows_marks_distributed_sampler_padding():
    data = list(range(5))  # 2 ranks: rank 0 gets 0 2 4, rank 1 gets 1 3 and a repeated 0
    for rank, expected in ((0, [True, True, True]), (1, [True, True, False])):
        loader = torch.utils.data.DataLoader(data, batch_size=2, sampler=DistributedSampler(
            data, num_replicas=2, rank=rank, shuffle=False))
        got = [real_rows(loader, i, len(b)) for i, b in enumerate(loader)]
        assert torch.cat(got).tolist() == expected
    assert real_rows(torch.utils.data.DataLoader(data), 0, 1) is None
