"""Reproduce the paper's Table-1-style comparison on the embedded Knights-and-Knaves setting:
GRPO, KDRL, RLAD (TRRD) and offline distillation with identical budgets, several seeds, compared at
equal steps (test accuracy of the final students) and at equal wall time (validation accuracy),
plus an alpha ablation of RLAD (paper Table 5).

    OMP_NUM_THREADS=1 python benchmarks/reproduce_kk.py                 # 3 seeds, the configs' budget
    OMP_NUM_THREADS=1 python benchmarks/reproduce_kk.py --ablation      # + RLAD alpha 0.1 .. 0.9
    OMP_NUM_THREADS=1 python benchmarks/reproduce_kk.py --quick --runs-dir /tmp/rkk_quick  # smoke

Every training is a subprocess of the real CLI (`python -m rlad_pl.cli fit`, the `rlad-pl` entry
point; offline distillation: `python -m rlad_pl.models.offline_distill`, then
`python -m rlad_pl.sft fit`), configured only by command-line overrides of the configs (plus one
generated file that moves the configs' ModelCheckpoint into the run's folder). A run lives in
`<runs-dir>/<run>/seed<S>` (TensorBoard events, logs, `hf_model`); a run whose `hf_model` and
`run.json` exist is skipped, so an interrupted reproduction resumes. The final students are
evaluated here on a fresh test split (the offline config's test seed) that shares no puzzle with
any RL training/validation split used, the warm-start models' SFT training splits, or the
prompts the offline student was trained on. Results: `benchmarks/results/kk_table.md`,
`kk_runs.json`, `kk_curves.png` (with `--quick`: the same names under `--runs-dir`).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import inspect
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path

import torch
import yaml

from rlad_pl.callbacks.evaluation import pass_at_k
from rlad_pl.data import PromptDataModule
from rlad_pl.models import load_model, load_tokenizer
from rlad_pl.models.sampling import score_records
from rlad_pl.sft_data import SFTDataModule, held_out_splits
from rlad_pl.tasks import get_task
from rlad_pl.tasks.knights_knaves.generator import statements_key
from rlad_pl.tasks.knights_knaves.reward import ANSWER_UNPARSED

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
CONFIGS = {"grpo": "configs/logic-grpo.yaml", "kdrl": "configs/logic-kdrl.yaml",
           "rlad": "configs/logic.yaml", "offline": "configs/logic-offline.yaml"}
RL_METHODS = ("grpo", "kdrl", "rlad")
ALPHAS = (0.1, 0.3, 0.5, 0.7, 0.9)
# Keys on which the RL configs must agree for the comparison to be fair (missing = class default).
BUDGET_KEYS = (
    "seed_everything", "trainer.max_steps", "trainer.val_check_interval",
    "data.init_args.task", "data.init_args.task_kwargs", "data.init_args.tokenizer",
    "data.init_args.prompts_per_step", "data.init_args.val_size_per_subset",
    "data.init_args.train_size", "data.init_args.seed",
    "model.init_args.student", "model.init_args.group_size", "model.init_args.temperature",
    "model.init_args.top_p", "model.init_args.max_new_tokens", "model.init_args.eps_low",
    "model.init_args.eps_high", "model.init_args.lr", "model.init_args.warmup_steps",
    "model.init_args.lr_schedule", "model.init_args.min_lr_ratio",
    "model.init_args.gradient_clip_val", "model.init_args.ppo_epochs",
    "model.init_args.minibatch_size", "model.init_args.beta", "model.init_args.eval_greedy",
    "model.init_args.eval_samples", "model.init_args.eval_temperature",
    "model.init_args.eval_top_p", "model.init_args.eval_max_new_tokens",
)
REWARD_TAG = "train/reward/mean"
ZERO_VARIANCE_TAG = "train/zero_variance_frac"
RL_VAL_TAG = "val/accuracy/mean"
WARM_START = "warm_start"  # results name of the untrained student
SFT_VAL_TAG = "val/acc/mean"  # rlad_pl.sft.SFTModule's greedy validation accuracy
# --quick: a smoke of the whole pipeline, not a measurement.
QUICK = {"steps": 2, "test_per_level": 10, "max_new_tokens": 128, "prompts_per_step": 2,
         "val_per_level": 4, "pairs_per_level": 8, "sft_batch_size": 2}


def say(message: str) -> None:
    print(f"[reproduce_kk {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------- configs and runs
def load_config(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def dotted_get(cfg: dict, key: str, default=None):
    """`cfg["a"]["b"]` for key "a.b", or `default` when a level is missing."""
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def apply_overrides(cfg: dict, overrides: dict) -> dict:
    """A copy of `cfg` with each dotted key of `overrides` set (what the CLI will see)."""
    out = copy.deepcopy(cfg)
    for key, value in overrides.items():
        node = out
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def budget_mismatches(configs: dict[str, dict], keys) -> list[str]:
    """One line per key on which the configs disagree (a missing key counts as None)."""
    lines = []
    for key in keys:
        values = {name: dotted_get(cfg, key) for name, cfg in configs.items()}
        if len({json.dumps(v, sort_keys=True) for v in values.values()}) > 1:
            lines.append(f"{key}: " + ", ".join(f"{n}={v!r}" for n, v in values.items()))
    return lines


def cli_args(overrides: dict) -> list[str]:
    """`--key=value` arguments for LightningCLI (None -> null, bools lower-case)."""
    def text(value) -> str:
        if value is None:
            return "null"
        if isinstance(value, bool):
            return str(value).lower()
        return str(value)

    return [f"--{key}={text(value)}" for key, value in overrides.items()]


def callbacks_with_checkpoint_dir(callbacks: list[dict], dirpath: str) -> list[dict]:
    """The config's callbacks with every ModelCheckpoint writing into `dirpath` (the configs fix
    one folder per config, so seeds would overwrite each other)."""
    out = copy.deepcopy(callbacks)
    for cb in out:
        if cb["class_path"].rsplit(".", 1)[-1] == "ModelCheckpoint":
            cb.setdefault("init_args", {})["dirpath"] = dirpath
    return out


@dataclass(frozen=True)
class Run:
    """One training: a method, a seed and (ablation only) an RLAD alpha other than the config's."""
    method: str
    seed: int
    alpha: float | None = None

    @property
    def name(self) -> str:
        return self.method if self.alpha is None else f"rlad-alpha{self.alpha:g}"


def plan_runs(methods, seeds, ablation: bool, config_alpha: float) -> list[Run]:
    """Seed-major (every method of seed 0, then seed 1, ...: background load hits all methods
    alike), then the alpha ablation on the first seed; the config's alpha is the main RLAD run."""
    runs = [Run(m, s) for s in seeds for m in methods]
    if ablation:
        for alpha in ALPHAS:
            run = Run("rlad", seeds[0], None if alpha == config_alpha else alpha)
            if run not in runs:
                runs.append(run)
    return runs


# ------------------------------------------------------------------------------- training
def run_subprocess(cmd: list[str], log_path: Path) -> float:
    """Run `cmd` from the repository root (environment passed through), output to `log_path`;
    the seconds it took. A failure stops the reproduction with the log's tail."""
    start = time.time()
    with open(log_path, "w") as log:
        log.write(shlex.join(cmd) + "\n")
        log.flush()
        code = subprocess.run(cmd, check=False, cwd=REPO, stdout=log,
                              stderr=subprocess.STDOUT).returncode
    if code != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-30:])
        raise SystemExit(f"failed (exit {code}): {shlex.join(cmd)}\n--- {log_path}\n{tail}")
    return time.time() - start


def rl_overrides(run: Run, steps: int, val_interval: int, runs_dir: Path, quick: bool,
                 rl_set: dict | None = None) -> dict:
    """The CLI overrides of an RL run: `rl_set` (--set, every RL method alike), budget, seeds,
    where it logs (and the smoke sizes)."""
    out = {**(rl_set or {}), "seed_everything": run.seed, "model.init_args.seed": run.seed,
           "data.init_args.seed": run.seed, "trainer.max_steps": steps,
           "trainer.val_check_interval": val_interval,
           "trainer.logger.init_args.save_dir": str(runs_dir),
           "trainer.logger.init_args.name": run.name,
           "trainer.logger.init_args.version": f"seed{run.seed}"}
    if run.alpha is not None:
        out["model.init_args.alpha"] = run.alpha
    if quick:
        out.update({"data.init_args.prompts_per_step": QUICK["prompts_per_step"],
                    "data.init_args.val_size_per_subset": QUICK["val_per_level"],
                    "model.init_args.max_new_tokens": QUICK["max_new_tokens"],
                    "model.init_args.eval_max_new_tokens": QUICK["max_new_tokens"]})
    return out


def sft_overrides(run: Run, steps: int, val_interval: int, runs_dir: Path, run_dir: Path,
                  quick: bool) -> dict:
    """The CLI overrides of the offline student's SFT: same steps, seed and validation cadence."""
    out = {"seed_everything": run.seed, "model.init_args.seed": run.seed,
           "data.init_args.seed": run.seed, "trainer.max_steps": steps,
           "trainer.val_check_interval": val_interval,
           "trainer.logger.init_args.save_dir": str(runs_dir),
           "trainer.logger.init_args.name": run.name,
           "trainer.logger.init_args.version": f"seed{run.seed}",
           "model.init_args.export_dir": str(run_dir / "hf_model"),
           "data.init_args.pairs_file": str(run_dir / "pairs.jsonl")}
    if quick:
        out.update({"data.init_args.val_per_level": QUICK["val_per_level"],
                    "data.init_args.batch_size": QUICK["sft_batch_size"],
                    "model.init_args.max_new_tokens": QUICK["max_new_tokens"]})
    return out


def train_rl(run: Run, config_path: str, overrides: dict, run_dir: Path) -> dict:
    config = load_config(REPO / config_path)
    ckpt_config = run_dir / "checkpoint_dir.yaml"
    callbacks = callbacks_with_checkpoint_dir(dotted_get(config, "trainer.callbacks", []),
                                              str(run_dir / "checkpoints"))
    ckpt_config.write_text(yaml.safe_dump({"trainer": {"callbacks": callbacks}}))
    cmd = [sys.executable, "-m", "rlad_pl.cli", "fit", "--config", config_path,
           "--config", str(ckpt_config), *cli_args(overrides)]
    start = time.time()
    seconds = run_subprocess(cmd, run_dir / "train.log")
    return {"commands": [shlex.join(cmd)], "start_time": start, "seconds": seconds}


def train_offline(run: Run, config_path: str, overrides: dict, run_dir: Path, teacher: str,
                  max_new_tokens: int, quick: bool) -> dict:
    """Teacher completions the verifier accepts, on training prompts generated with the run's
    seed (offline_distill's `--seed`; its sampling itself is not seeded), then SFT of the student.
    The run's clock starts with the teacher sampling: it is part of the method's cost."""
    sft = apply_overrides(load_config(REPO / config_path), overrides)
    data = {**defaults_of(SFTDataModule), **sft["data"]["init_args"]}
    distill = [sys.executable, "-m", "rlad_pl.models.offline_distill", "--teacher", teacher,
               "--task", data["task"], "--levels", *data["levels"],
               "--max-new-tokens", str(max_new_tokens), "--seed", str(run.seed),
               "--val", str(data["val_per_level"]), str(data["val_seed"]),
               "--test", str(data["test_per_level"]), str(data["test_seed"]),
               "--out", overrides["data.init_args.pairs_file"]]
    if quick:
        distill += ["--per-level", str(QUICK["pairs_per_level"])]
    start = time.time()
    pairs_seconds = run_subprocess(distill, run_dir / "pairs.log")
    if not Path(overrides["data.init_args.pairs_file"]).read_text().strip():
        raise SystemExit(f"{run.name} seed {run.seed}: the teacher had no accepted completion")
    cmd = [sys.executable, "-m", "rlad_pl.sft", "fit", "--config", config_path,
           *cli_args(overrides)]
    sft_seconds = run_subprocess(cmd, run_dir / "train.log")
    return {"commands": [shlex.join(distill), shlex.join(cmd)], "start_time": start,
            "seconds": pairs_seconds + sft_seconds, "pairs_seconds": pairs_seconds}


def defaults_of(cls) -> dict:
    """Constructor defaults of a class (what a config leaves out)."""
    return {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty}


# -------------------------------------------------------------------- TensorBoard curves
def read_scalars(log_dir: Path, tags) -> dict[str, list[tuple[int, float, float]]]:
    """(step, wall_time, value) events of each present tag in a TensorBoard run folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0},
                           purge_orphaned_data=False)
    acc.Reload()
    present = set(acc.Tags()["scalars"])
    return {t: [(e.step, e.wall_time, e.value) for e in acc.Scalars(t)] for t in tags
            if t in present}


def training_curve(events, start_time: float) -> list[tuple[int, float, float]]:
    """(optimizer steps done, seconds since the run started, value). Lightning logs a training
    step's scalars at the count of steps before it, hence + 1."""
    return [(step + 1, wall - start_time, value) for step, wall, value in events]


def validation_curve(events, start_time: float, training_began: float | None):
    """As `training_curve` for validation points: a validation inside the training loop is
    logged at (steps done - 1); one written before training began (the RL module's pre-training
    pass, logged at step 0) is at 0 steps. `training_began`: wall time of the first training
    scalar, or None when no pre-training point is logged (SFT)."""
    return [(0 if training_began is not None and wall < training_began else step + 1,
             wall - start_time, value) for step, wall, value in events]


def value_at_time(points, t: float):
    """The latest (steps, seconds, value) point reached by `t` seconds, or None."""
    reached = [p for p in points if p[1] <= t]
    return max(reached, key=lambda p: p[1]) if reached else None


def mean_curve(curves) -> list[tuple[int, float, float]]:
    """(step, mean seconds, mean value) over curves at the steps that all of them have."""
    if not curves:
        return []
    by_step = [{step: (wall, value) for step, wall, value in c} for c in curves]
    common = sorted(set.intersection(*(set(c) for c in by_step)))
    return [(s, statistics.fmean(c[s][0] for c in by_step),
             statistics.fmean(c[s][1] for c in by_step)) for s in common]


# ---------------------------------------------------------------------------- test split
def rl_split_records(data_args: dict) -> list[dict]:
    """Training and validation records of an RL run, rebuilt by its own DataModule."""
    dm = PromptDataModule(**data_args)
    dm.setup("fit")
    return [r for split in ("train", "val") for r, _ in dm.splits[split]]


def sft_training_records(data_args: dict) -> list[dict]:
    """The generated training records of an SFT config (as `SFTDataModule.setup` makes them)."""
    a = {**defaults_of(SFTDataModule), **data_args}
    task = get_task(a["task"], **(a["task_kwargs"] or {}))
    held = held_out_splits(task, a["levels"], a["val_per_level"], a["test_per_level"],
                           a["val_seed"], a["test_seed"])
    held_out = [r for split in held for recs in split.values() for r in recs]
    return [r for lv in a["levels"] for r in task.generate(
        a["train_per_level"], seed=a["seed"], subset=lv, exclude=held_out)]


def disjoint_test_split(task, levels, per_level: int, seed, exclude_records,
                        exclude_prompts) -> dict[str, list[dict]]:
    """`per_level` generated records per level, none equal to an excluded record (same
    statements) and none whose prompt is an excluded prompt. Generation is deterministic and
    prefix-stable, so enough candidates are drawn to cover every prompt that may be dropped."""
    keys = list({statements_key(r) for r in exclude_records})
    prompts = set(exclude_prompts)
    split = {}
    for lv in levels:
        candidates = task.generate(per_level + len(prompts), seed=seed, subset=lv, exclude=keys)
        kept = [r for r in candidates if task.prompt(r) not in prompts][:per_level]
        if len(kept) < per_level:
            raise ValueError(f"{lv}: only {len(kept)} test puzzles disjoint from training")
        split[lv] = kept
    return split


def split_fingerprint(split: dict[str, list[dict]]) -> str:
    """Short hash of the split's puzzles (statements), to tell test splits apart."""
    text = json.dumps({lv: [r["statements"] for r in recs] for lv, recs in split.items()})
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------- evaluation
def level_metrics(greedy: list[list[dict]], sampled: list[list[dict]], k: int) -> dict:
    """Greedy accuracy, mean@k, unbiased pass@k and malformed rates of one level, from the task's
    score dicts (one greedy and k sampled per puzzle). Malformed = the answer could not be read
    (format broken or roles unparseable: the Logic-RL answer score ANSWER_UNPARSED)."""
    correct = torch.tensor([sum(s["correct"] for s in row) for row in sampled])
    flat = [s for row in sampled for s in row]
    return {
        "n": len(greedy),
        "greedy_accuracy": statistics.fmean(row[0]["correct"] for row in greedy),
        "mean_at_k": statistics.fmean(s["correct"] for s in flat),
        "pass_at_k": float(pass_at_k(k, correct, k).mean()),
        "greedy_malformed": statistics.fmean(row[0]["answer"] == ANSWER_UNPARSED
                                             for row in greedy),
        "sampled_malformed": statistics.fmean(s["answer"] == ANSWER_UNPARSED for s in flat),
    }


def average_levels(per_level: dict[str, dict]) -> dict:
    """Mean over levels of every metric (the paper's "Avg")."""
    keys = [k for k in next(iter(per_level.values())) if k != "n"]
    return {k: statistics.fmean(m[k] for m in per_level.values()) for k in keys}


def evaluate_student(model_path: str, task, split, *, k: int, max_new_tokens: int,
                     temperature: float, top_p: float, seed: int) -> dict:
    """Greedy and k-sample evaluation of a student (path or short name) on the test split."""
    model, tokenizer = load_model(model_path).eval(), load_tokenizer(model_path)
    per_level = {}
    for lv, records in split.items():
        greedy = score_records(task, model, tokenizer, records, max_new_tokens=max_new_tokens,
                               temperature=0.0)
        torch.manual_seed(seed)
        sampled = score_records(task, model, tokenizer, records, num_samples=k,
                                max_new_tokens=max_new_tokens, temperature=temperature,
                                top_p=top_p)
        per_level[lv] = level_metrics(greedy, sampled, k)
    return {"levels": per_level, "avg": average_levels(per_level)}


def evaluate_cached(model: str, cache: Path, task, split, sampling: dict, key: dict) -> dict:
    """Test results of `model` (a path or short name), from `cache` when made for `key`."""
    cached = json.loads(cache.read_text()) if cache.exists() else {}
    if cached.get("key") == key:
        say(f"test results of {model} already computed ({cache})")
        return cached["test"]
    say(f"evaluate {model} on {len(next(iter(split.values())))} puzzles/level")
    test = evaluate_student(model, task, split, **sampling)
    cache.write_text(json.dumps({"key": key, "test": test}, indent=1) + "\n")
    return test


def evaluate_all(runs, runs_dir: Path, student: str, task, split, test_info: dict,
                 sampling: dict, jobs: int) -> dict:
    """Test results of every run's exported student and of the warm-start `student` (key
    WARM_START), `jobs` evaluation processes at a time."""
    key = {"split": test_info["fingerprint"], **sampling}
    models = {run: (str(runs_dir / run.name / f"seed{run.seed}" / "hf_model"),
                    runs_dir / run.name / f"seed{run.seed}" / "test_eval.json") for run in runs}
    models[WARM_START] = (student, runs_dir / "warm_start_test_eval.json")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = {name: pool.submit(evaluate_cached, model, cache, task, split, sampling, key)
                   for name, (model, cache) in models.items()}
        return {name: future.result() for name, future in futures.items()}


# ------------------------------------------------------------------------------- reporting
def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = list(values)
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def fmt_mean_std(values, digits: int = 3) -> str:
    """'m ± s' over seeds ('m' for one value, '-' for none)."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean, std = mean_std(values)
    return f"{mean:.{digits}f}" if len(values) == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown_table(headers, rows) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def method_table(results, labels, levels, metric: str) -> str:
    """Per-level test `metric` and its Avg, mean ± std over each method's seeds."""
    rows = []
    for name, label in labels.items():
        runs = [r for r in results if r["name"] == name]
        rows.append([label, len(runs)]
                    + [fmt_mean_std(r["test"]["levels"][lv][metric] for r in runs)
                       for lv in levels]
                    + [fmt_mean_std(r["test"]["avg"][metric] for r in runs)])
    return markdown_table(["method", "seeds", *levels, "Avg"], rows)


def equal_time_rows(results, labels, among=None) -> tuple[float, list[list]]:
    """The time at which the fastest of the methods `among` (default: all; mean run time over
    seeds) ended, and per method the validation accuracy each seed had reached by then."""
    seconds = {n: statistics.fmean(r["seconds"] for r in results if r["name"] == n)
               for n in labels}
    t_star = min(seconds[n] for n in (among or labels))
    rows = []
    for name, label in labels.items():
        runs = [r for r in results if r["name"] == name]
        reached = [value_at_time(r["curves"]["val"], t_star) for r in runs]
        rows.append([label, f"{seconds[name]:.0f}",
                     fmt_mean_std(p[2] if p else None for p in reached),
                     "/".join(str(p[0]) if p else "-" for p in reached),
                     fmt_mean_std(r["curves"]["val"][-1][2] if r["curves"]["val"] else None
                                  for r in runs)])
    return t_star, rows


def write_report(path: Path, header: list[str], results, labels, ablation: dict[str, float],
                 ablation_seed: int, levels, k: int, warm_start: dict) -> None:
    """kk_table.md: test tables at equal steps (with the `warm_start` student's test results as
    the first row), the equal-wall-time table, malformed rates and reward-variance shares, and
    the alpha ablation (`ablation`: run name -> alpha)."""
    parts = ["\n".join(header)]
    with_start = [{"name": WARM_START, "test": warm_start, "variance_share": None}, *results]
    start_labels = {WARM_START: "Warm start (the student before training)", **labels}
    for metric, title in (("greedy_accuracy", "Greedy accuracy"),
                          ("mean_at_k", f"Sampled mean@{k}"),
                          ("pass_at_k", f"Sampled pass@{k} (unbiased)")):
        parts.append(f"## {title} on the test split, equal steps (mean ± std over seeds)\n\n"
                     + method_table(with_start, start_labels, levels, metric))
    rl = [n for n in labels if n in RL_METHODS]
    t_star, rows = equal_time_rows(results, labels, rl)
    parts.append(
        "## Equal wall time\n\n"
        f"Validation accuracy (greedy, mean over levels) that each seed had reached after "
        f"{t_star:.0f} s, the mean run time of the fastest "
        f"{'RL method (offline distillation is not a run of RL steps)' if rl else 'method'}. "
        "Run time counts from the "
        "start of the process (model loading included) to its exit; for offline distillation "
        "from the start of the teacher sampling. RL methods validate on their DataModule's "
        "validation split (step 0 = before training), offline distillation on the SFT "
        "config's validation split (no step-0 point).\n\n"
        + markdown_table(["method", "mean run time (s)", "val Avg at that time",
                          "steps done (per seed)", "val Avg at the end"], rows))
    rows = [[label,
             fmt_mean_std(r["test"]["avg"]["greedy_malformed"] for r in with_start
                          if r["name"] == name),
             fmt_mean_std(r["test"]["avg"]["sampled_malformed"] for r in with_start
                          if r["name"] == name),
             fmt_mean_std(r.get("variance_share") for r in with_start if r["name"] == name)]
            for name, label in start_labels.items()]
    parts.append(
        "## Malformed outputs and groups with reward variance\n\n"
        "Malformed: share of test completions whose answer could not be read (format broken or "
        "roles unparseable), mean over levels. Groups with variance: share of training prompt "
        f"groups whose G rewards differ (1 - `{ZERO_VARIANCE_TAG}`), mean over training steps "
        "(RL only).\n\n"
        + markdown_table(["method", "malformed (greedy)", f"malformed (sampled, k={k})",
                          "groups with reward variance"], rows))
    if ablation:
        rows = []
        for name, alpha in ablation.items():
            runs = [r for r in results if r["name"] == name and r["seed"] == ablation_seed]
            rows.append([alpha, *(fmt_mean_std(r["test"]["avg"][m] for r in runs) for m in
                                  ("greedy_accuracy", "mean_at_k", "pass_at_k",
                                   "greedy_malformed")),
                         fmt_mean_std(r["variance_share"] for r in runs)])
        parts.append(f"## RLAD alpha ablation (seed {ablation_seed}, test Avg over levels)\n\n"
                     + markdown_table(["alpha", "greedy", f"mean@{k}", f"pass@{k}",
                                       "malformed (greedy)", "groups with reward variance"],
                                      rows))
    path.write_text("\n\n".join(parts) + "\n")


def plot_curves(path: Path, results, labels) -> None:
    """Training reward and validation accuracy, mean over seeds, against steps and seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for name, label in labels.items():
        runs = [r for r in results if r["name"] == name]
        for col, key in enumerate(("reward", "val")):
            curve = mean_curve([r["curves"][key] for r in runs if r["curves"][key]])
            if not curve:
                continue
            steps, seconds, values = zip(*curve)
            style = {"label": f"{label} ({len(runs)} seeds)",
                     "marker": "o" if key == "val" else None}
            axes[0][col].plot(steps, values, **style)
            axes[1][col].plot(seconds, values, **style)
    for row, xlabel in enumerate(("optimizer steps", "wall seconds since the run started")):
        axes[row][0].set_ylabel("training reward (mean)")
        axes[row][1].set_ylabel("validation accuracy (greedy, Avg)")
        for ax in axes[row]:
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3)
    axes[0][1].legend(fontsize=8)
    fig.suptitle("Knights and Knaves: mean over seeds (offline distillation has no reward)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------ main
def parse_settings(items: list[str]) -> dict:
    """{"a.b": value} from ["a.b=VALUE", ...], VALUE read as YAML (numbers, lists, null; also
    "5e-5", which YAML 1.1 reads as a string)."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key or key.startswith("-"):
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with a dotted config key")
        value = yaml.safe_load(text)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        out[key] = value
    return out


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", choices=[*RL_METHODS, "offline"],
                    default=[*RL_METHODS, "offline"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, help="optimizer steps per run (default: the RL "
                                              "configs' trainer.max_steps)")
    ap.add_argument("--val-every", type=int, help="validate every this many steps (default: "
                                                  "the RL configs' trainer.val_check_interval)")
    ap.add_argument("--set", dest="rl_set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a dotted key of every RL config alike, e.g. "
                         "model.init_args.lr=5e-5 (repeatable; VALUE is read as YAML)")
    ap.add_argument("--test-per-level", type=int, default=500)
    ap.add_argument("--eval-samples", type=int, default=4, help="k samples per test puzzle")
    ap.add_argument("--jobs", type=int, default=1,
                    help="trainings (and evaluations) run at a time; with 2, give each process "
                         "one thread (OMP_NUM_THREADS=1) on a 2-core machine")
    ap.add_argument("--ablation", action="store_true",
                    help=f"also RLAD with alpha in {ALPHAS} on the first seed")
    ap.add_argument("--runs-dir", type=Path, default=Path("runs/reproduce_kk"))
    ap.add_argument("--warm-start-configs", nargs="*",
                    default=["configs/sft_student.yaml", "configs/sft_teacher.yaml",
                             "configs/sft_teacher_stage2.yaml"],
                    help="SFT configs that trained the embedded student and teacher: their "
                         "training puzzles are kept out of the test split")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke test ({QUICK['steps']} steps, first seed, "
                         f"{QUICK['test_per_level']} test puzzles per level, smaller batches and "
                         "max_new_tokens); outputs go to --runs-dir, never benchmarks/results")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs must be at least 1, got {args.jobs}")
    try:
        args.rl_set = parse_settings(args.rl_set)
    except ValueError as err:
        ap.error(str(err))
    if args.quick:
        args.steps, args.seeds = QUICK["steps"], args.seeds[:1]
        args.test_per_level = QUICK["test_per_level"]
    return args


@dataclass
class Setting:
    """What every run shares, read from the configs (and the command line)."""
    configs: dict[str, dict]
    steps: int
    val_interval: int
    task: object
    levels: list[str]
    config_alpha: float
    rl_set: dict

    @property
    def rl_base(self) -> dict:
        return self.configs["rlad"]


def read_setting(args) -> Setting:
    """Load the configs, check that the RL budgets agree and the offline config fine-tunes the
    same student on the same levels."""
    configs = {m: load_config(REPO / path) for m, path in CONFIGS.items()}
    for m in RL_METHODS:
        configs[m] = apply_overrides(configs[m], args.rl_set)
    mismatches = budget_mismatches({m: configs[m] for m in RL_METHODS}, BUDGET_KEYS)
    if mismatches:
        raise SystemExit("the RL configs' budgets differ:\n  " + "\n  ".join(mismatches))
    base = configs["rlad"]
    data = dotted_get(base, "data.init_args")
    task = get_task(data["task"], **(data.get("task_kwargs") or {}))
    offline = configs["offline"]
    offline_levels = {**defaults_of(SFTDataModule), **offline["data"]["init_args"]}["levels"]
    if dotted_get(offline, "model.init_args.model") != dotted_get(base, "model.init_args.student") \
            or list(offline_levels) != list(task.subsets):
        raise SystemExit(f"{CONFIGS['offline']} trains another student or other levels than "
                         "the RL configs")
    steps = args.steps or dotted_get(base, "trainer.max_steps")
    val_every = args.val_every or dotted_get(base, "trainer.val_check_interval")
    return Setting(configs, steps, min(val_every, steps),
                   task, list(task.subsets), dotted_get(base, "model.init_args.alpha"),
                   args.rl_set)


def train_one(run: Run, setting: Setting, runs_dir: Path, quick: bool) -> dict:
    """Train `run` unless finished already; its run.json record (with how long it took)."""
    run_dir = runs_dir / run.name / f"seed{run.seed}"
    done = run_dir / "run.json"
    if done.exists() and (run_dir / "hf_model").exists():
        say(f"skip {run.name} seed {run.seed}: {run_dir / 'hf_model'} exists")
        return {**json.loads(done.read_text()), "skipped": True}
    if run_dir.exists():
        say(f"removing the unfinished run {run_dir}")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    say(f"train {run.name} seed {run.seed} -> {run_dir}")
    if run.method == "offline":
        overrides = sft_overrides(run, setting.steps, setting.val_interval, runs_dir,
                                  run_dir, quick)
        max_new = QUICK["max_new_tokens"] if quick else \
            dotted_get(setting.configs["offline"], "model.init_args.max_new_tokens")
        record = train_offline(run, CONFIGS["offline"], overrides, run_dir,
                               dotted_get(setting.rl_base, "model.init_args.teacher"),
                               max_new, quick)
    else:
        overrides = rl_overrides(run, setting.steps, setting.val_interval, runs_dir, quick,
                                 setting.rl_set)
        record = train_rl(run, CONFIGS[run.method], overrides, run_dir)
    record["overrides"] = overrides
    done.write_text(json.dumps(record, indent=1) + "\n")
    say(f"done {run.name} seed {run.seed} in {record['seconds']:.0f} s")
    return record


def train_all(runs: list[Run], setting: Setting, runs_dir: Path, quick: bool,
              jobs: int) -> dict:
    """Train every run not yet finished, `jobs` subprocesses at a time in plan order."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {run: pool.submit(train_one, run, setting, runs_dir, quick) for run in runs}
        return {run: future.result() for run, future in futures.items()}


def build_test_split(runs: list[Run], setting: Setting, args, runs_dir: Path):
    """The test split (the offline config's test seed) and what it was kept apart from."""
    exclude = []
    for seed in sorted({r.seed for r in runs if r.method != "offline"}):
        overrides = rl_overrides(Run("rlad", seed), setting.steps, setting.val_interval,
                                 runs_dir, args.quick, setting.rl_set)
        exclude += rl_split_records(dotted_get(apply_overrides(setting.rl_base, overrides),
                                               "data.init_args"))
    warm_start = []
    for path in args.warm_start_configs:
        data = dotted_get(load_config(REPO / path), "data.init_args")
        if not data.get("pairs_file") and data not in warm_start:
            warm_start.append(data)
    exclude += [r for data in warm_start for r in sft_training_records(data)]
    prompts = {json.loads(line)["prompt"] for run in runs if run.method == "offline"
               for line in (runs_dir / run.name / f"seed{run.seed}" / "pairs.jsonl")
               .read_text().splitlines() if line.strip()}
    seed = dotted_get(setting.configs["offline"], "data.init_args.test_seed")
    split = disjoint_test_split(setting.task, setting.levels, args.test_per_level, seed,
                                exclude, prompts)
    return split, {"per_level": args.test_per_level, "seed": seed,
                   "fingerprint": split_fingerprint(split), "excluded_records": len(exclude),
                   "excluded_prompts": len(prompts)}


def collect(run: Run, record: dict, run_dir: Path, test: dict, config_alpha: float) -> dict:
    """One run's numbers: test results, curves from its TensorBoard events, variance share."""
    if run.method == "offline":
        scalars = read_scalars(run_dir, [SFT_VAL_TAG])
        val = validation_curve(scalars.get(SFT_VAL_TAG, []), record["start_time"], None)
        reward, variance_share = [], None
    else:
        scalars = read_scalars(run_dir, [REWARD_TAG, ZERO_VARIANCE_TAG, RL_VAL_TAG])
        reward = training_curve(scalars[REWARD_TAG], record["start_time"])
        began = min(wall for _, wall, _ in scalars[REWARD_TAG])
        val = validation_curve(scalars.get(RL_VAL_TAG, []), record["start_time"], began)
        variance_share = 1 - statistics.fmean(v for _, _, v in scalars[ZERO_VARIANCE_TAG])
    alpha = run.alpha if run.alpha is not None else \
        (config_alpha if run.method == "rlad" else None)
    return {"name": run.name, "method": run.method, "seed": run.seed, "alpha": alpha, **record,
            "test": test, "variance_share": variance_share,
            "curves": {"reward": reward, "val": val}}


def header_lines(args, setting: Setting, test_info: dict, sampling: dict, started: float,
                 total: float, skipped: int, n_runs: int, train_seconds: float, machine: str,
                 command: str) -> list:
    h = dotted_get(setting.rl_base, "model.init_args")
    prompts = QUICK["prompts_per_step"] if args.quick else \
        dotted_get(setting.rl_base, "data.init_args.prompts_per_step")
    lines = [
        "# Knights and Knaves: GRPO vs KDRL vs RLAD vs offline distillation",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine}  ",
        f"Date: {datetime.fromtimestamp(started, timezone.utc):%Y-%m-%d %H:%M UTC}  ",
        (f"Total wall time of this invocation: {total:.0f} s ({skipped} of {n_runs} runs were "
         "already trained and skipped; their run times come from their run.json); training "
         f"time summed over all runs: {train_seconds:.0f} s"),
        "",
        (f"{args.jobs} training(s) at a time (plan order: seed-major, then the ablation), each "
         f"process with OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; the run "
         "times below were measured under that load."),
        "",
        (f"Budget, identical for every method and seed: {setting.steps} optimizer steps, seeds "
         f"{args.seeds}, validation every {setting.val_interval} steps. RL ("
         f"{', '.join(CONFIGS[m] for m in RL_METHODS)}): {prompts} prompts x "
         f"G={h.get('group_size')} rollouts per step, lr {h.get('lr')}, "
         f"{h.get('warmup_steps')} warm-up steps, then {h.get('lr_schedule', 'constant')}. "
         f"Offline distillation ({CONFIGS['offline']}, its own batch size and lr schedule): "
         "SFT on the teacher completions the verifier accepted, for training prompts generated "
         "with the run's seed."
         + (f" Overrides of every RL config (--set): {setting.rl_set}." if setting.rl_set
            else "")),
        "",
        (f"Test split: {test_info['per_level']} generated puzzles per level "
         f"({', '.join(setting.levels)}), generator seed {test_info['seed']} (fingerprint "
         f"{test_info['fingerprint']}), sharing no puzzle with the RL runs' training and "
         "validation splits, the warm-start SFT training splits "
         f"({', '.join(args.warm_start_configs) or 'none'}) or the offline students' training "
         f"prompts. Greedy, and k={sampling['k']} samples at temperature "
         f"{sampling['temperature']}, top-p {sampling['top_p']}; max_new_tokens "
         f"{sampling['max_new_tokens']}."),
    ]
    if args.quick:
        lines[1:1] = ["", "**Smoke test (--quick): tiny budget, the numbers mean nothing.**"]
    return lines


def main(argv=None) -> None:
    started, load_at_start = time.time(), os.getloadavg()
    args = parse_args(argv)
    runs_dir = args.runs_dir.resolve()
    setting = read_setting(args)
    runs = plan_runs(args.methods, args.seeds, args.ablation, setting.config_alpha)
    say(f"{len(runs)} runs of {setting.steps} steps: "
        + ", ".join(f"{r.name}/seed{r.seed}" for r in runs))
    records = train_all(runs, setting, runs_dir, args.quick, args.jobs)

    say("building the test split")
    split, test_info = build_test_split(runs, setting, args, runs_dir)
    base = setting.rl_base
    sampling = {"k": args.eval_samples,
                "max_new_tokens": QUICK["max_new_tokens"] if args.quick else
                (dotted_get(base, "model.init_args.eval_max_new_tokens")
                 or dotted_get(base, "model.init_args.max_new_tokens")),
                "temperature": dotted_get(base, "model.init_args.eval_temperature"),
                "top_p": dotted_get(base, "model.init_args.eval_top_p"),
                "seed": test_info["seed"]}
    tests = evaluate_all(runs, runs_dir, dotted_get(base, "model.init_args.student"),
                         setting.task, split, test_info, sampling, args.jobs)
    results = [collect(run, records[run], runs_dir / run.name / f"seed{run.seed}", tests[run],
                       setting.config_alpha) for run in runs]

    names = {"grpo": "GRPO", "kdrl": "KDRL", "rlad": f"RLAD (alpha {setting.config_alpha:g})",
             "offline": "Offline distillation"}
    labels = {m: names[m] for m in args.methods}
    ablation = {Run("rlad", args.seeds[0], None if a == setting.config_alpha else a).name: a
                for a in ALPHAS} if args.ablation else {}
    total = time.time() - started
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    command = f"OMP_NUM_THREADS={threads} " + shlex.join(
        ["python", "benchmarks/reproduce_kk.py", *sys.argv[1:]])
    machine = (f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs, "
               f"torch {torch.__version__}; load average {load_at_start[0]:.1f} at the start, "
               f"{os.getloadavg()[0]:.1f} at the end")
    skipped = sum(bool(r.get("skipped")) for r in records.values())
    header = header_lines(args, setting, test_info, sampling, started, total, skipped,
                          len(runs), sum(r["seconds"] for r in results), machine, command)
    out_dir = runs_dir if args.quick else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    write_report(out_dir / "kk_table.md", header, results, labels, ablation, args.seeds[0],
                 setting.levels, args.eval_samples, tests[WARM_START])
    (out_dir / "kk_runs.json").write_text(json.dumps({
        "command": command, "machine": machine,
        "date": datetime.fromtimestamp(started, timezone.utc).isoformat(),
        "total_wall_s": total, "steps": setting.steps, "seeds": args.seeds,
        "levels": setting.levels, "test_split": test_info, "sampling": sampling,
        "warm_start": tests[WARM_START], "runs": results}, indent=1) + "\n")
    plot_curves(out_dir / "kk_curves.png", results, labels)
    say(f"wrote kk_table.md, kk_runs.json and kk_curves.png to {out_dir} ({total:.0f} s)")


if __name__ == "__main__":
    main()
