"""Rollout and teacher log-prob pass on real K&K rollouts of the embedded student: the rollout with
and without dropping finished rows, the teacher pass by scoring plan.

RL rollouts of reasoning traces have very different lengths (in the default run: mean ~130 new
tokens, max 384 = max_new_tokens), so a chunk padded to its longest completion wastes most of its
positions when the rows of a prompt stay together. This script samples rollouts as
`configs/logic.yaml` does (its student, teacher, prompts, G, temperature, max_new_tokens,
logprob_micro_batch_size) with `KVDecodeEngine` twice from the same seed, dropping finished rows
(the default) and never dropping them (`compact_fraction=2`), and times the teacher pass on the
sampled rollout, interleaved (A B C A B C ...):

- plain: `micro_batched_logprobs` (every row in full, prompt included; length-sorted chunks),
- per-prompt: `shared_prompt_logprobs` with `prompt_chunks` (each prompt prefilled once per chunk),
- chosen: `shared_prompt_logprobs` default (`scoring_chunks`: the plan with fewer positions).

It checks that the three give the same log-probs and prints per plan the median seconds, the token
positions fed to the model and the ratios.

    OMP_NUM_THREADS=1 python benchmarks/kk_rollout_phases.py              # ~4 min on 2 cores
    OMP_NUM_THREADS=1 python benchmarks/kk_rollout_phases.py --batches 1 --repeats 1   # smoke
"""

from __future__ import annotations

import argparse
import os

if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import yaml

from rlad_pl.data import PromptDataModule
from rlad_pl.models import load_model
from rlad_pl.rollout import SamplingSettings, micro_batched_logprobs, shared_prompt_logprobs
from rlad_pl.rollout.kv_decode import KVDecodeEngine
from rlad_pl.rollout.scoring import (
    distinct_prompts,
    length_sorted_chunks,
    prompt_chunks,
    scored_positions,
    scoring_chunks,
)

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/logic.yaml")
    ap.add_argument("--batches", type=int, default=3, help="rollouts (training batches) sampled")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes per plan and rollout")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = yaml.safe_load((REPO / args.config).read_text())
    m, d = cfg["model"]["init_args"], cfg["data"]["init_args"]
    torch.manual_seed(args.seed)
    dm = PromptDataModule(**{**d, "seed": args.seed})
    dm.setup("fit")
    student, teacher = load_model(m["student"]).eval(), load_model(m["teacher"]).eval()
    tok = dm.tokenizer
    engines = {"keep finished rows": KVDecodeEngine(tok, compact_fraction=2.0),
               "drop finished rows": KVDecodeEngine(tok)}  # last: its rollout is scored
    rollout_seconds = {name: [] for name in engines}
    size = m.get("logprob_micro_batch_size") or m["micro_batch_size"]
    plans = {"plain": None, "per-prompt": prompt_chunks, "chosen": scoring_chunks}
    seconds = {name: [] for name in plans}
    positions = {name: 0 for name in plans}
    lengths_seen = []
    batches = iter(dm.train_dataloader())
    for _ in range(args.batches):
        batch = next(batches)
        seed = torch.randint(2**31, ()).item()
        for name, engine in engines.items():
            torch.manual_seed(seed)
            start = time.perf_counter()
            rollout = engine.generate(
                student, batch["input_ids"], batch["attention_mask"],
                SamplingSettings(num_samples=m["group_size"], temperature=m["temperature"],
                                 top_p=m.get("top_p", 1.0), max_new_tokens=m["max_new_tokens"]))
            rollout_seconds[name].append(time.perf_counter() - start)
        seq, mask, P = rollout.sequences, rollout.attention_mask, rollout.prompt_length
        lengths = mask[:, P:].sum(-1)
        lengths_seen += lengths.tolist()
        _, prompt = distinct_prompts(seq, mask, P)
        rows = torch.arange(len(seq))
        plain_chunks = length_sorted_chunks(lengths, rows, size)
        positions["plain"] += sum(len(c) * (P + int(lengths[c].max())) for c in plain_chunks)
        positions["per-prompt"] += scored_positions(prompt_chunks(prompt, size), prompt,
                                                    lengths, P)
        positions["chosen"] += scored_positions(scoring_chunks(prompt, lengths, P, size),
                                                prompt, lengths, P)
        results = {}
        for _ in range(args.repeats):
            for name, planner in plans.items():
                start = time.perf_counter()
                if planner is None:
                    out = micro_batched_logprobs(teacher, seq, mask, P, micro_batch_size=size)
                else:
                    chunks = planner(prompt, size) if planner is prompt_chunks else \
                        planner(prompt, lengths, P, size)
                    out = shared_prompt_logprobs(teacher, seq, mask, P, micro_batch_size=size,
                                                 chunks=chunks)
                seconds[name].append(time.perf_counter() - start)
                results[name] = out
        keep = rollout.completion_mask.bool()
        for name in ("per-prompt", "chosen"):
            torch.testing.assert_close(results[name][keep], results["plain"][keep],
                                       atol=1e-4, rtol=1e-4)

    print(f"# Rollout and teacher pass on real K&K rollouts ({args.config})\n")
    print(f"Command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} python "
          f"benchmarks/kk_rollout_phases.py` (batches {args.batches}, repeats {args.repeats})  ")
    print(f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}  ")
    print(f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s); load average {os.getloadavg()[0]:.1f}  ")
    print(f"Rollouts: {args.batches} x {len(lengths_seen) // args.batches} completions of "
          f"{m['student']} at temperature {m['temperature']}; completion length mean "
          f"{statistics.fmean(lengths_seen):.0f}, max {max(lengths_seen)}; teacher "
          f"{m['teacher']}, {size} rows per chunk. Log-probs of the three plans agree "
          "(atol 1e-4).\n")
    print("| rollout engine | median s per rollout | s / keep |")
    print("|---|---|---|")
    keep = statistics.median(rollout_seconds["keep finished rows"])
    for name, times in rollout_seconds.items():
        print(f"| {name} | {statistics.median(times):.3f} | {statistics.median(times) / keep:.2f} |")
    print("\nThe teacher pass on the rollout sampled last (the default engine's):\n")
    print("| plan | median s per rollout | token positions per rollout | s / plain |")
    print("|---|---|---|---|")
    base = statistics.median(seconds["plain"])
    for name in plans:
        med = statistics.median(seconds[name])
        print(f"| {name} | {med:.3f} | {positions[name] // args.batches} | {med / base:.2f} |")


if __name__ == "__main__":
    main()
