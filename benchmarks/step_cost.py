"""Seconds per training step of GRPO, KDRL and RLAD on an embedded task, side by side.

The equal-wall-time comparison of `reproduce.py` needs each method's cost per step under the
same load; the run times of its trainings do not give that (runs train hours apart, beside other
jobs). This runs each method's real training (`python -m rlad_pl.cli fit` with the task's config
and the method's overlay, exactly as `reproduce.py` does; validation and checkpoints off) for a
few steps, interleaved: round r trains every method with seed r (the same prompts), in an order
rotated from round to round, one process at a time. A method's cost is the median over rounds of
its per-process median `time/step_s` (the first step of each process dropped as warm-up), and
each method's ratio to GRPO is taken within each round, where the load is shared.

    OMP_NUM_THREADS=1 python benchmarks/step_cost.py --task logic     # ~15 min on 2 cores
    OMP_NUM_THREADS=1 python benchmarks/step_cost.py --task math
    python benchmarks/reproduce.py ... --step-cost benchmarks/results/kk_step_cost.json

Results: `benchmarks/results/<prefix>_step_cost.json` and `.md` (`--out-dir` for elsewhere).
The cost is the warm start's: later in training the completions' lengths change with the policy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from reproduce import RESULTS_DIR, RL_METHODS, SUITES, Run, rl_overrides, say, train_rl
from reproduce_report import markdown_table, read_scalars

PHASES = ("step", "rollout", "teacher", "update")
NO_VALIDATION = {"trainer.num_sanity_val_steps": 0, "trainer.limit_val_batches": 0}


def measure(run: Run, suite, steps: int, work: Path) -> dict:
    """Median seconds per step (and per phase) of `steps` training steps of `run`, first dropped."""
    run_dir = work / run.name / f"seed{run.seed}"
    run_dir.mkdir(parents=True)
    overrides = {**rl_overrides(run, steps, steps, work, quick=False), **NO_VALIDATION}
    record = train_rl(run, suite, overrides, run_dir)
    scalars = read_scalars(run_dir, [f"time/{p}_s" for p in PHASES])
    out = {"process_s": record["seconds"]}
    for phase in PHASES:
        values = [v for step, _, v in sorted(scalars.get(f"time/{phase}_s", []))][1:]
        if values:
            out[f"{phase}_s"] = statistics.median(values)
    if "step_s" not in out:
        raise SystemExit(f"{run.name}: no time/step_s after the first step in {run_dir}")
    return out


def summarize(rounds: list[dict], methods: list[str]) -> dict:
    """Per method: median over rounds of s/step, and of the within-round ratio to GRPO."""
    out = {}
    for m in methods:
        per_round = [r[m]["step_s"] for r in rounds]
        out[m] = {"step_s": statistics.median(per_round), "min_s": min(per_round),
                  "max_s": max(per_round)}
        if "grpo" in methods:
            out[m]["ratio_to_grpo"] = statistics.median(
                r[m]["step_s"] / r["grpo"]["step_s"] for r in rounds)
    return out


def write_markdown(path: Path, result: dict) -> None:
    rows = [[m, f"{s['step_s']:.2f}", f"{s['min_s']:.2f}-{s['max_s']:.2f}",
             f"{s['ratio_to_grpo']:.2f}" if "ratio_to_grpo" in s else "-",
             " / ".join(f"{statistics.median(r[m].get(f'{p}_s', 0.0) for r in result['rounds']):.2f}"
                        for p in PHASES[1:])]
            for m, s in result["methods"].items()]
    path.write_text("\n".join([
        f"# {result['title']}: seconds per training step, side by side",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}  ",
        f"Date: {result['date']}  ",
        f"Wall time: {result['wall_s']:.0f} s",
        "",
        (f"{result['rounds_n']} rounds; each round trains every method for {result['steps']} "
         "steps from the warm start (seed = round, the same prompts for every method; order "
         "rotated per round; one process at a time), validation and checkpoints off. s/step: "
         "median over rounds of each process's median `time/step_s` after its first step. "
         "Ratio: median over rounds of the within-round ratio to GRPO. The config's budget per "
         "step (prompts, G, max_new_tokens) as in the comparison."),
        "",
        markdown_table(["method", "s/step", "min-max over rounds", "ratio to GRPO",
                        "rollout / teacher / update s"], rows),
        "",
    ]))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=sorted(SUITES), default="logic")
    ap.add_argument("--methods", nargs="+", choices=RL_METHODS, default=list(RL_METHODS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5, help="steps per process (first dropped)")
    ap.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.steps < 2:
        ap.error(f"--rounds {args.rounds} --steps {args.steps}: expected rounds >= 1 and "
                 "steps >= 2 (the first step is dropped)")
    suite = SUITES[args.task]
    started = time.time()
    rounds = []
    with tempfile.TemporaryDirectory(prefix="step_cost_") as tmp:
        for r in range(args.rounds):
            order = args.methods[r % len(args.methods):] + args.methods[:r % len(args.methods)]
            measured = {}
            for m in order:
                measured[m] = measure(Run(m, r), suite, args.steps, Path(tmp) / f"round{r}")
                say(f"round {r} {m}: {measured[m]['step_s']:.2f} s/step")
            rounds.append(measured)
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    result = {
        "title": suite.title, "task": args.task,
        "command": f"OMP_NUM_THREADS={threads} "
                   + shlex.join(["python", "benchmarks/step_cost.py", *sys.argv[1:]]),
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
                   f"load average {os.getloadavg()[0]:.1f} at the end",
        "date": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="minutes"),
        "wall_s": time.time() - started, "steps": args.steps, "rounds_n": args.rounds,
        "rounds": rounds, "methods": summarize(rounds, args.methods)}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.out_dir / f"{suite.prefix}_step_cost"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    write_markdown(stem.with_suffix(".md"), result)
    say(f"wrote {stem}.json and .md: " + ", ".join(
        f"{m} {s['step_s']:.2f} s/step" for m, s in result["methods"].items()))


if __name__ == "__main__":
    main()
