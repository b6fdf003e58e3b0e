"""Reproduce the paper's Table-1-style comparison on an embedded task (Knights and Knaves,
`--task logic`, the default; math, `--task math`): GRPO, KDRL, RLAD (TRRD) and offline
distillation with identical budgets, several seeds, compared at equal steps (test accuracy of the
final students) and at equal wall time (validation accuracy), plus an alpha ablation of RLAD
(paper Table 5), and the learning-rate sweep that tunes every method the same way first.

    OMP_NUM_THREADS=1 python benchmarks/reproduce.py            # K&K, 3 seeds, logic.yaml budget
    OMP_NUM_THREADS=1 python benchmarks/reproduce.py --ablation # + RLAD alpha 0.1 .. 0.9
    OMP_NUM_THREADS=1 python benchmarks/reproduce.py --quick --runs-dir /tmp/rkk_quick  # smoke
    OMP_NUM_THREADS=1 python benchmarks/reproduce.py --lrs 1e-5 3e-5 1e-4 \
        --offline-lrs 3e-5 1e-4 3e-4 1e-3 --seeds 0 --jobs 2  # lr sweep, validation only
    OMP_NUM_THREADS=1 python benchmarks/reproduce.py --tuned benchmarks/results/kk_lr_sweep.json \
        --seeds 0 1 2 3 4 --ablation --jobs 2 \
        --step-cost benchmarks/results/kk_step_cost.json  # the comparison at the chosen lrs
    OMP_NUM_THREADS=1 python benchmarks/reproduce.py --task math ...   # the same on math

The sweep (`--lrs`) trains every method at every learning rate (each method's own lr key:
`optimization.lr` of the RL module, `lr` of the SFT module) and picks, per method, the lr with
the best mean greedy validation accuracy after step 0; it never touches the test split
(`<prefix>_lr_sweep.md`, `.json`, `.png`; prefix `kk` or `math`).

Plan, run, report. Every method is the task's RLAD config (`configs/logic.yaml`,
`configs/math.yaml`) plus its overlay (`configs/logic-grpo.yaml`, `logic-kdrl.yaml`,
`logic-offline.yaml`, and the `math-` ones: only what differs), so the budget (steps, data,
sampling, evaluation) is the same by construction. Every training is a subprocess of the real CLI
(`python -m rlad_pl.cli fit`, the `rlad-pl` entry point; offline distillation:
`python -m rlad_pl.sft.offline_distill`, then `python -m rlad_pl.sft fit`), with command-line
overrides for the run's seed, budget and folders (plus one generated file that moves the
ModelCheckpoint into the run's folder). A run lives in `<runs-dir>/<run>/seed<S>` (TensorBoard
events, logs, `hf_model`); a run whose `hf_model` and `run.json` exist is skipped, so an
interrupted reproduction resumes. The final students are kept as bf16 copies
(`benchmarks/results/students/<prefix>/<run>/seed<S>`, plain HF folders listed in the results
JSON) and those copies, the warm start and the teacher are evaluated by `rlad_pl.evaluation` on a
fresh test split (`rlad_pl.tasks.splits.disjoint_split`, the offline config's test seed) that
shares no problem with any RL training/validation split used, the warm-start models' SFT training
splits, or the prompts the offline student was trained on; RLAD is compared with each baseline
paired by seed and by test problem. The equal-wall-time table puts the RL methods on one clock,
their seconds per step measured side by side by `benchmarks/step_cost.py` (`--step-cost`).
Results (`reproduce_report.py`): `benchmarks/results/<prefix>_table.md`, `<prefix>_runs.json`,
`<prefix>_curves.png` (with `--quick`: the same names under `--runs-dir`).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path

import torch
import yaml
from reproduce_report import (
    RL_METHODS,
    TEACHER,
    WARM_START,
    ZERO_VARIANCE_TAG,
    curve,
    plot_curves,
    plot_sweep,
    read_scalars,
    write_report,
    write_sweep_report,
)

from rlad_pl.data import PromptDataModule
from rlad_pl.evaluation import problem_outcomes, score_split, summarize_split
from rlad_pl.models import cast_weights, load_model, load_tokenizer
from rlad_pl.module import EvaluationSettings
from rlad_pl.sft import SFTDataModule
from rlad_pl.tasks import get_task
from rlad_pl.tasks.splits import disjoint_split, split_fingerprint

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"


@dataclass(frozen=True)
class Suite:
    """One task's comparison: its RLAD config (the base), each method's overlay of it, the SFT
    configs that trained its warm-start models (kept out of the test split), the prefix of its
    results files and its title."""
    base: str
    overlays: dict
    warm_start_configs: tuple
    prefix: str
    title: str


def overlays(name: str) -> dict:
    return {"grpo": f"configs/{name}-grpo.yaml", "kdrl": f"configs/{name}-kdrl.yaml",
            "rlad": None, "offline": f"configs/{name}-offline.yaml"}


SUITES = {
    "logic": Suite("configs/logic.yaml", overlays("logic"),
                   ("configs/sft_student.yaml", "configs/sft_teacher.yaml",
                    "configs/sft_teacher_stage2.yaml"), "kk", "Knights and Knaves"),
    "math": Suite("configs/math.yaml", overlays("math"),
                  ("configs/sft_math_student.yaml", "configs/sft_math_teacher.yaml"), "math",
                  "Embedded math"),
}
ALPHA_KEY = "model.init_args.objective.init_args.alpha"  # RLAD's (TRRD's) alpha in the base
ALPHAS = (0.1, 0.3, 0.5, 0.7, 0.9)
PAIRS_LOCKS: dict[str, threading.Lock] = {}  # one per pairs file (runs run in threads)
LR_KEYS = {"rl": "model.init_args.optimization.lr", "offline": "model.init_args.lr"}
REWARD_TAG = "train/reward/mean"
VAL_TAG = "val/accuracy/mean"  # greedy validation accuracy (RL module and SFTModule alike)
RESULTS_FORMAT = "evaluation-tags-2"  # cached test results of another format are recomputed
STUDENTS_DTYPE = "bfloat16"  # kept students are stored as the embedded models are
# --quick: a smoke of the whole pipeline, not a measurement.
QUICK = {"steps": 2, "test_per_level": 10, "max_new_tokens": 128, "prompts_per_step": 2,
         "val_per_level": 4, "pairs_per_level": 8, "sft_batch_size": 2}


def say(message: str) -> None:
    print(f"[reproduce {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------- configs and plan
def load_config(path: str | Path) -> dict:
    return yaml.safe_load((REPO / path).read_text())


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


def cli_args(overrides: dict) -> list[str]:
    """`--key=value` arguments for LightningCLI (None -> null, bools lower-case)."""
    def text(value) -> str:
        if value is None:
            return "null"
        if isinstance(value, bool):
            return str(value).lower()
        return str(value)

    return [f"--{key}={text(value)}" for key, value in overrides.items()]


def method_configs(suite: Suite, method: str) -> list[str]:
    """The `--config` files of a method: the base, then its overlay."""
    return [suite.base] + ([suite.overlays[method]] if suite.overlays[method] else [])


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
    """One training: a method, a seed, (ablation only) an RLAD alpha other than the config's and
    (sweep only) a learning rate instead of the method config's."""
    method: str
    seed: int
    alpha: float | None = None
    lr: float | None = None

    @property
    def name(self) -> str:
        name = self.method if self.alpha is None else f"rlad-alpha{self.alpha:g}"
        return name if self.lr is None else f"{name}-lr{self.lr:g}"


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


def plan_sweep(methods, seeds, lrs, offline_lrs) -> list[Run]:
    """Seed-major, then the RL methods lr by lr (the methods of one lr side by side, same
    load), then offline distillation at its own `offline_lrs` (SFT steps take larger lrs)."""
    rl = [m for m in methods if m != "offline"]
    return [run for s in seeds for run in
            [Run(m, s, lr=lr) for lr in lrs for m in rl]
            + ([Run("offline", s, lr=lr) for lr in offline_lrs] if "offline" in methods else [])]


@dataclass
class Setting:
    """What every run shares: the task's suite, the base config (with --set applied), the
    offline overlay, the budget and the task."""
    suite: Suite
    rl: dict
    offline: dict
    steps: int
    val_interval: int
    task: object
    levels: list[str]
    config_alpha: float
    rl_set: dict
    tuned_lr: dict  # method -> the lr a sweep chose (--tuned); {}: the configs' lrs


def read_setting(args) -> Setting:
    """The base config with `--set` applied, and a check that the offline overlay fine-tunes the
    same student on the same levels."""
    suite = SUITES[args.task]
    rl = apply_overrides(load_config(suite.base), args.rl_set)
    offline = load_config(suite.overlays["offline"])
    data = dotted_get(rl, "data.init_args")
    task = get_task(data["task"], **(data.get("task_kwargs") or {}))
    if dotted_get(offline, "model.init_args.model") != dotted_get(rl, "model.init_args.student") \
            or list(dotted_get(offline, "data.init_args.levels", [])) != list(task.subsets):
        raise SystemExit(f"{suite.overlays['offline']} trains another student or other levels "
                         f"than {suite.base}")
    steps = args.steps or dotted_get(rl, "trainer.max_steps")
    val_every = args.val_every or dotted_get(rl, "trainer.val_check_interval")
    return Setting(suite, rl, offline, steps, min(val_every, steps), task, list(task.subsets),
                   dotted_get(rl, ALPHA_KEY), args.rl_set, read_tuned(args.tuned, args.methods))


def read_tuned(path: Path | None, methods) -> dict:
    """{method: lr} of a sweep's results file (`<prefix>_lr_sweep.json`, its `chosen_lr`)."""
    if path is None:
        return {}
    try:
        chosen = json.loads(path.read_text())["chosen_lr"]
    except (OSError, ValueError, KeyError) as err:
        raise SystemExit(f"--tuned {path}: not a sweep's results file ({err})") from None
    missing = [m for m in methods if m not in chosen]
    if missing:
        raise SystemExit(f"--tuned {path}: no chosen lr for {missing}; it has {sorted(chosen)}")
    return {m: chosen[m] for m in methods}


def read_step_cost(path: Path | None, task: str, methods) -> dict | None:
    """{"source", "step_s": {method: seconds per step}} of a step_cost.py results file for the
    RL `methods` of `task`, or None without a file."""
    if path is None:
        return None
    try:
        measured = json.loads(path.read_text())
        costs = {m: measured["methods"][m]["step_s"] for m in methods if m in RL_METHODS}
        if measured["task"] != task:
            raise ValueError(f"it measured --task {measured['task']}, not {task}")
    except (OSError, ValueError, KeyError) as err:
        raise SystemExit(f"--step-cost {path}: not step_cost.py's results for every RL method "
                         f"of {methods} ({type(err).__name__}: {err})") from None
    return {"source": repo_relative(path), "command": measured["command"], "step_s": costs}


# ------------------------------------------------------------------------------------ run
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


def common_overrides(run: Run, steps: int, val_interval: int, runs_dir: Path) -> dict:
    """Seed, budget and logger folder of a run (RL and SFT alike)."""
    return {"seed_everything": run.seed, "model.init_args.seed": run.seed,
            "data.init_args.seed": run.seed, "trainer.max_steps": steps,
            "trainer.val_check_interval": val_interval,
            "trainer.logger.init_args.save_dir": str(runs_dir),
            "trainer.logger.init_args.name": run.name,
            "trainer.logger.init_args.version": f"seed{run.seed}"}


def lr_override(run: Run, tuned_lr: float | None, key: str) -> dict:
    """{key: lr} for the run's lr (the sweep's, else `tuned_lr`), {} for the config's."""
    lr = run.lr if run.lr is not None else tuned_lr
    return {} if lr is None else {key: lr}


def rl_overrides(run: Run, steps: int, val_interval: int, runs_dir: Path, quick: bool,
                 rl_set: dict | None = None, tuned_lr: float | None = None) -> dict:
    """The CLI overrides of an RL run: `rl_set` (--set, every RL method alike), then the run's
    seed, budget and folders (and the smoke sizes), and its lr: the sweep's, else `tuned_lr`."""
    out = {**(rl_set or {}), **common_overrides(run, steps, val_interval, runs_dir)}
    if run.alpha is not None:
        out[ALPHA_KEY] = run.alpha
    out.update(lr_override(run, tuned_lr, LR_KEYS["rl"]))
    if quick:
        out.update({"data.init_args.prompts_per_step": QUICK["prompts_per_step"],
                    "data.init_args.val_size_per_subset": QUICK["val_per_level"],
                    "model.init_args.sampling.max_new_tokens": QUICK["max_new_tokens"],
                    "model.init_args.evaluation.max_new_tokens": QUICK["max_new_tokens"]})
    return out


def pairs_path(run: Run, runs_dir: Path) -> Path:
    """The teacher completions an offline run is fitted on. The sweep's runs of one seed share
    one file: the teacher's sampling is not seeded, so each lr would otherwise see other data."""
    if run.lr is not None:
        return runs_dir / "offline-pairs" / f"seed{run.seed}" / "pairs.jsonl"
    return runs_dir / run.name / f"seed{run.seed}" / "pairs.jsonl"


def sft_overrides(run: Run, steps: int, val_interval: int, runs_dir: Path, run_dir: Path,
                  quick: bool, tuned_lr: float | None = None) -> dict:
    """The CLI overrides of the offline student's SFT: same steps, seed and validation cadence;
    its lr as in `rl_overrides`."""
    out = {**common_overrides(run, steps, val_interval, runs_dir),
           "model.init_args.export_dir": str(run_dir / "hf_model"),
           "data.init_args.pairs_file": str(pairs_path(run, runs_dir))}
    out.update(lr_override(run, tuned_lr, LR_KEYS["offline"]))
    if quick:
        out.update({"data.init_args.val_per_level": QUICK["val_per_level"],
                    "data.init_args.batch_size": QUICK["sft_batch_size"],
                    "model.init_args.max_new_tokens": QUICK["max_new_tokens"]})
    return out


def train_rl(run: Run, suite: Suite, overrides: dict, run_dir: Path) -> dict:
    configs = method_configs(suite, run.method)
    callbacks = dotted_get(load_config(configs[-1]), "trainer.callbacks") or \
        dotted_get(load_config(suite.base), "trainer.callbacks", [])
    ckpt_config = run_dir / "checkpoint_dir.yaml"
    ckpt_config.write_text(yaml.safe_dump({"trainer": {"callbacks": callbacks_with_checkpoint_dir(
        callbacks, str(run_dir / "checkpoints"))}}))
    cmd = [sys.executable, "-m", "rlad_pl.cli", "fit",
           *(arg for path in [*configs, str(ckpt_config)] for arg in ("--config", path)),
           *cli_args(overrides)]
    start = time.time()
    seconds = run_subprocess(cmd, run_dir / "train.log")
    return {"commands": [shlex.join(cmd)], "start_time": start, "seconds": seconds}


def train_offline(run: Run, setting: Setting, overrides: dict, run_dir: Path,
                  max_new_tokens: int, quick: bool) -> dict:
    """Teacher completions the verifier accepts, on training prompts generated with the run's
    seed (offline_distill's `--seed`; its sampling itself is not seeded), then SFT of the student.
    The run's clock starts with the teacher sampling: it is part of the method's cost (a shared
    pairs file, `pairs_path`, is made once: its sampling time counts in every run using it)."""
    sft = apply_overrides(setting.offline, overrides)
    data = SFTDataModule(**sft["data"]["init_args"]).hparams  # checks the data config, too
    distill = [sys.executable, "-m", "rlad_pl.sft.offline_distill",
               "--teacher", dotted_get(setting.rl, "model.init_args.teacher"),
               "--task", data.task, "--levels", *data.levels,
               "--max-new-tokens", str(max_new_tokens), "--seed", str(run.seed),
               "--val", str(data.val_per_level), str(data.val_seed),
               "--test", str(data.test_per_level), str(data.test_seed),
               "--out", overrides["data.init_args.pairs_file"]]
    if quick:
        distill += ["--per-level", str(QUICK["pairs_per_level"])]
    pairs = Path(overrides["data.init_args.pairs_file"])
    made = pairs.with_name("pairs.json")  # command and seconds of a finished pairs file
    start = time.time()
    with PAIRS_LOCKS.setdefault(str(pairs), threading.Lock()):  # sweep runs of one seed
        if not made.exists():
            pairs.parent.mkdir(parents=True, exist_ok=True)
            seconds = run_subprocess(distill, pairs.with_name("pairs.log"))
            made.write_text(json.dumps({"command": shlex.join(distill), "seconds": seconds}))
    pairs_made = json.loads(made.read_text())
    pairs_seconds = pairs_made["seconds"]
    if not pairs.read_text().strip():
        raise SystemExit(f"{run.name} seed {run.seed}: the teacher had no accepted completion")
    cmd = [sys.executable, "-m", "rlad_pl.sft", "fit",
           *(arg for path in method_configs(setting.suite, "offline")
             for arg in ("--config", path)),
           *cli_args(overrides)]
    sft_seconds = run_subprocess(cmd, run_dir / "train.log")
    return {"commands": [pairs_made["command"], shlex.join(cmd)], "start_time": start,
            "seconds": pairs_seconds + sft_seconds, "pairs_seconds": pairs_seconds}


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
                                  run_dir, quick, setting.tuned_lr.get("offline"))
        max_new = QUICK["max_new_tokens"] if quick else \
            dotted_get(setting.offline, "model.init_args.max_new_tokens")
        record = train_offline(run, setting, overrides, run_dir, max_new, quick)
    else:
        overrides = rl_overrides(run, setting.steps, setting.val_interval, runs_dir, quick,
                                 setting.rl_set, setting.tuned_lr.get(run.method))
        record = train_rl(run, setting.suite, overrides, run_dir)
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


# ---------------------------------------------------------------------- test split, evaluation
def rl_split_records(data_args: dict) -> list[dict]:
    """Training and validation records of an RL run, rebuilt by its own DataModule."""
    dm = PromptDataModule(**data_args)
    dm.setup("fit")
    return [r for split in ("train", "val") for r, _ in dm.splits[split]]


def build_test_split(runs: list[Run], setting: Setting, args, runs_dir: Path):
    """The test split (the offline config's test seed) and what it was kept apart from: the RL
    runs' training and validation records, the warm-start SFT training records and the offline
    students' training prompts."""
    exclude = []
    for seed in sorted({r.seed for r in runs if r.method != "offline"}):
        overrides = rl_overrides(Run("rlad", seed), setting.steps, setting.val_interval,
                                 runs_dir, args.quick, setting.rl_set)
        exclude += rl_split_records(dotted_get(apply_overrides(setting.rl, overrides),
                                               "data.init_args"))
    warm_start = []
    for path in args.warm_start_configs or setting.suite.warm_start_configs:
        data = dotted_get(load_config(path), "data.init_args")
        if not data.get("pairs_file") and data not in warm_start:
            warm_start.append(data)
    exclude += [r for data in warm_start for r in SFTDataModule(**data).splits()[0]]
    prompts = {json.loads(line)["prompt"] for run in runs if run.method == "offline"
               for line in pairs_path(run, runs_dir)
               .read_text().splitlines() if line.strip()}
    seed = dotted_get(setting.offline, "data.init_args.test_seed")
    split = disjoint_split(setting.task, setting.levels, args.test_per_level, seed, exclude,
                           prompts)
    return split, {"per_level": args.test_per_level, "seed": seed,
                   "fingerprint": split_fingerprint(split, setting.task), "excluded_records": len(exclude),
                   "excluded_prompts": len(prompts)}


def keep_students(runs, runs_dir: Path, students_dir: Path) -> dict:
    """Each run's exported student copied to `students_dir/<run>/seed<S>` with its weights in
    STUDENTS_DTYPE (a few MB each): the folders the test results are computed from, so the
    students that are kept are the ones the report describes."""
    kept = {}
    for run in runs:
        dest = students_dir / run.name / f"seed{run.seed}"
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(runs_dir / run.name / f"seed{run.seed}" / "hf_model", dest)
        cast_weights(dest, STUDENTS_DTYPE)
        kept[run] = dest
    return kept


def evaluate_cached(model: str, cache: Path, task, split, sampling: dict, key: dict) -> dict:
    """Test results of `model` (a path or short name), greedy and k samples: {"test": the
    `rlad_pl.evaluation` tags, "problems": each problem's outcomes}; from `cache` when made for
    `key`."""
    cached = json.loads(cache.read_text()) if cache.exists() else {}
    if cached.get("key") == key:
        say(f"test results of {model} already computed ({cache})")
        return {"test": cached["test"], "problems": cached["problems"]}
    say(f"evaluate {model} on {len(next(iter(split.values())))} problems/level")
    scored = score_split(task, load_model(model).eval(), load_tokenizer(model), split,
                         num_samples=sampling["k"], temperature=sampling["temperature"],
                         top_p=sampling["top_p"], max_new_tokens=sampling["max_new_tokens"],
                         seed=sampling["seed"])
    result = {"test": summarize_split(task, scored, [sampling["k"]]),
              "problems": problem_outcomes(task, scored)}
    cache.write_text(json.dumps({"key": key, **result}) + "\n")
    return result


def evaluate_all(students: dict, runs_dir: Path, reference_models: dict, task, split,
                 test_info: dict, sampling: dict, jobs: int) -> dict:
    """Test results of every run's kept student (`students`: run -> folder) and of the
    `reference_models` (results name -> model: the warm start, the teacher), `jobs` evaluation
    processes at a time."""
    key = {"split": test_info["fingerprint"], "format": RESULTS_FORMAT, **sampling}
    models = {run: (str(folder), runs_dir / run.name / f"seed{run.seed}" / "test_eval.json")
              for run, folder in students.items()}
    models.update({name: (model, runs_dir / f"{name}_test_eval.json")
                   for name, model in reference_models.items()})
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = {name: pool.submit(evaluate_cached, model, cache, task, split, sampling, key)
                   for name, (model, cache) in models.items()}
        return {name: future.result() for name, future in futures.items()}


# ------------------------------------------------------------------------------- report
def collect(run: Run, record: dict, run_dir: Path, test: dict | None, config_alpha: float,
            sampled_tag: str, student: Path | None = None) -> dict:
    """One run's numbers: test results (`evaluate_cached`'s; None in the sweep), curves from
    its TensorBoard events (validation greedy and, RL only, sampled `sampled_tag`), variance
    share, and the kept `student`'s folder (relative to the repository when inside it)."""
    if run.method == "offline":
        scalars = read_scalars(run_dir, [VAL_TAG])
        val = curve(scalars.get(VAL_TAG, []), record["start_time"])
        reward, sampled, variance_share = [], [], None
    else:
        scalars = read_scalars(run_dir, [REWARD_TAG, ZERO_VARIANCE_TAG, VAL_TAG, sampled_tag])
        reward = curve(scalars[REWARD_TAG], record["start_time"])
        val = curve(scalars.get(VAL_TAG, []), record["start_time"])
        sampled = curve(scalars.get(sampled_tag, []), record["start_time"])
        variance_share = 1 - statistics.fmean(v for _, _, v in scalars[ZERO_VARIANCE_TAG])
    alpha = run.alpha if run.alpha is not None else \
        (config_alpha if run.method == "rlad" else None)
    return {"name": run.name, "method": run.method, "seed": run.seed, "alpha": alpha,
            "lr": run.lr, **record, "student": student and repo_relative(student),
            "test": test and test["test"], "problems": test and test["problems"],
            "variance_share": variance_share,
            "curves": {"reward": reward, "val": val, "val_sampled": sampled}}


def repo_relative(path: Path) -> str:
    """`path` relative to the repository when inside it, else absolute."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def header_lines(args, setting: Setting, test_info: dict | None, sampling: dict | None,
                 started: float, total: float, skipped: int, n_runs: int, train_seconds: float,
                 machine: str, command: str) -> list:
    """Title, provenance and budget of a report; the test split's paragraph unless the sweep's
    (`test_info` None)."""
    h = dotted_get(setting.rl, "model.init_args.optimization")
    prompts = QUICK["prompts_per_step"] if args.quick else \
        dotted_get(setting.rl, "data.init_args.prompts_per_step")
    group = dotted_get(setting.rl, "model.init_args.sampling.num_samples")
    if args.lrs:
        lr = f"lr {' / '.join(f'{x:g}' for x in args.lrs)} (swept)"
        sft_lr = f", lr {' / '.join(f'{x:g}' for x in args.offline_lrs)} (swept)"
    elif setting.tuned_lr:
        lr = f"each method's lr from {args.tuned} (" + ", ".join(
            f"{m} {x:g}" for m, x in setting.tuned_lr.items()) + ")"
        sft_lr = ""
    else:
        lr, sft_lr = f"lr {h.get('lr')}", ""
    lines = [
        f"# {setting.suite.title}: " + ("learning-rate sweep of " if args.lrs else "")
        + "GRPO vs KDRL vs RLAD vs offline distillation",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine}  ",
        f"Date: {datetime.fromtimestamp(started, timezone.utc):%Y-%m-%d %H:%M UTC}  ",
        (f"Total wall time of this invocation: {total:.0f} s ({skipped} of {n_runs} runs were "
         "already trained and skipped; their run times come from their run.json); training "
         f"time summed over all runs: {train_seconds:.0f} s"),
        "",
        (f"{args.jobs} training(s) at a time (plan order: seed-major, then "
         f"{'the lr' if args.lrs else 'the ablation'}), each "
         f"process with OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; the run "
         "times below were measured under that load."),
        "",
        (f"Budget, identical for every method and seed: {setting.steps} optimizer steps, seeds "
         f"{args.seeds}, validation every {setting.val_interval} steps. RL "
         f"({setting.suite.base} and the overlays {setting.suite.overlays['grpo']}, "
         f"{setting.suite.overlays['kdrl']}): {prompts} prompts x "
         f"G={group} rollouts per step, {lr}, "
         f"{h.get('warmup_steps')} warm-up steps, then {h.get('lr_schedule', 'constant')}."
         + (f" Offline distillation ({setting.suite.base} + {setting.suite.overlays['offline']}, "
            "its own batch size and lr "
            f"schedule{sft_lr}): SFT on the teacher completions the "
            "verifier accepted, for training prompts generated with the run's seed."
            if "offline" in args.methods else "")
         + (f" Overrides of every RL config (--set): {setting.rl_set}." if setting.rl_set
            else "")),
    ]
    if test_info is not None:
        lines += ["", (
            f"Test split: {test_info['per_level']} generated problems per level "
            f"({', '.join(setting.levels)}), generator seed {test_info['seed']} (fingerprint "
            f"{test_info['fingerprint']}), sharing no problem with the RL runs' training and "
            "validation splits, the warm-start SFT training splits "
            f"({', '.join(args.warm_start_configs or setting.suite.warm_start_configs)}) "
            "or the offline students' "
            f"training prompts. Greedy, and k={sampling['k']} samples at temperature "
            f"{sampling['temperature']}, top-p {sampling['top_p']}; max_new_tokens "
            f"{sampling['max_new_tokens']}.")]
    else:
        lines += ["", ("Selection on validation only (the test split is not evaluated): per "
                       "method, the lr with the highest score, the mean greedy validation "
                       "accuracy over the validation points after step 0 (RL: the "
                       "DataModule's validation split; offline distillation: the SFT config's, "
                       "another split, so each method's scores compare with its own step 0, "
                       "not across methods), mean over seeds.")]
    if args.quick:
        lines[1:1] = ["", "**Smoke test (--quick): tiny budget, the numbers mean nothing.**"]
    return lines


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
    ap.add_argument("--task", choices=sorted(SUITES), default="logic",
                    help="logic: Knights and Knaves (configs/logic*.yaml, results kk_*); "
                         "math: configs/math*.yaml, results math_*")
    ap.add_argument("--steps", type=int, help="optimizer steps per run (default: the base's "
                                              "trainer.max_steps)")
    ap.add_argument("--val-every", type=int, help="validate every this many steps (default: "
                                                  "the base's trainer.val_check_interval)")
    ap.add_argument("--set", dest="rl_set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a dotted key of every RL run alike, e.g. "
                         "model.init_args.lr=5e-5 (repeatable; VALUE is read as YAML)")
    ap.add_argument("--test-per-level", type=int, default=500)
    ap.add_argument("--eval-samples", type=int, default=4, help="k samples per test problem")
    ap.add_argument("--jobs", type=int, default=1,
                    help="trainings (and evaluations) run at a time; with 2, give each process "
                         "one thread (OMP_NUM_THREADS=1) on a 2-core machine")
    ap.add_argument("--lrs", type=float, nargs="+", metavar="LR",
                    help="learning-rate sweep: every method at each LR, validation only "
                         "(<prefix>_lr_sweep.md / .json / .png; no test split, no ablation)")
    ap.add_argument("--tuned", type=Path, metavar="SWEEP_JSON",
                    help="train each method at the lr a sweep chose (its <prefix>_lr_sweep.json)")
    ap.add_argument("--offline-lrs", type=float, nargs="+", metavar="LR",
                    help="the sweep's learning rates of offline distillation (default: --lrs)")
    ap.add_argument("--ablation", action="store_true",
                    help=f"also RLAD with alpha in {ALPHAS} on the first seed")
    ap.add_argument("--step-cost", type=Path, metavar="STEP_COST_JSON",
                    help="seconds per step of the RL methods measured side by side "
                         "(benchmarks/step_cost.py's <prefix>_step_cost.json): the clock of the "
                         "equal-wall-time table (default: each run's own clock)")
    ap.add_argument("--runs-dir", type=Path, help="default: runs/reproduce_<task>")
    ap.add_argument("--warm-start-configs", nargs="*",
                    help="SFT configs that trained the embedded student and teacher: their "
                         "training problems are kept out of the test split (default: the "
                         "task's, e.g. " + " ".join(SUITES["logic"].warm_start_configs) + ")")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke test ({QUICK['steps']} steps, first seed, "
                         f"{QUICK['test_per_level']} test problems per level, smaller batches and "
                         "max_new_tokens); outputs go to --runs-dir, never benchmarks/results")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs must be at least 1, got {args.jobs}")
    if args.lrs:
        args.offline_lrs = args.offline_lrs or args.lrs
        if args.ablation or any(lr <= 0 for lr in args.lrs + args.offline_lrs):
            ap.error(f"--lrs {args.lrs} --offline-lrs {args.offline_lrs}: expected learning "
                     "rates > 0, without --ablation")
    elif args.offline_lrs:
        ap.error("--offline-lrs is part of the sweep: give --lrs too")
    if args.lrs and (args.tuned or args.step_cost):
        ap.error("--tuned and --step-cost are for the comparison after a sweep, not for --lrs")
    try:
        args.rl_set = parse_settings(args.rl_set)
    except ValueError as err:
        ap.error(str(err))
    if args.quick:
        args.steps, args.seeds = QUICK["steps"], args.seeds[:1]
        args.test_per_level = QUICK["test_per_level"]
    return args


def provenance(load_at_start) -> tuple[str, str]:
    """This invocation's command line and the machine it ran on (with the load average)."""
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    command = f"OMP_NUM_THREADS={threads} " + shlex.join(
        ["python", "benchmarks/reproduce.py", *sys.argv[1:]])
    machine = (f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs, "
               f"torch {torch.__version__}; load average {load_at_start[0]:.1f} at the start, "
               f"{os.getloadavg()[0]:.1f} at the end")
    return command, machine


def main(argv=None) -> None:
    started, load_at_start = time.time(), os.getloadavg()
    args = parse_args(argv)
    runs_dir = (args.runs_dir or Path(f"runs/reproduce_{args.task}")).resolve()
    setting = read_setting(args)
    step_cost = read_step_cost(args.step_cost, args.task, args.methods)
    prefix = setting.suite.prefix
    # plan
    runs = plan_sweep(args.methods, args.seeds, args.lrs, args.offline_lrs) if args.lrs else \
        plan_runs(args.methods, args.seeds, args.ablation, setting.config_alpha)
    say(f"{len(runs)} runs of {setting.steps} steps: "
        + ", ".join(f"{r.name}/seed{r.seed}" for r in runs))
    # run
    records = train_all(runs, setting, runs_dir, args.quick, args.jobs)
    h = dotted_get(setting.rl, "model.init_args")
    evaluation = EvaluationSettings(**(h.get("evaluation") or {}))  # with the module's defaults
    val_k = evaluation.samples or args.eval_samples  # the sampled validation's k
    sampled_tag = f"val/mean@{val_k}"
    out_dir = runs_dir if args.quick else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {"grpo": "GRPO", "kdrl": "KDRL", "rlad": f"RLAD (alpha {setting.config_alpha:g})",
             "offline": "Offline distillation"}
    labels = {m: names[m] for m in args.methods}
    if args.lrs:
        results = [collect(run, records[run], runs_dir / run.name / f"seed{run.seed}", None,
                           setting.config_alpha, sampled_tag) for run in runs]
        command, machine = provenance(load_at_start)
        total = time.time() - started
        skipped = sum(bool(r.get("skipped")) for r in records.values())
        header = header_lines(args, setting, None, None, started, total, skipped, len(runs),
                              sum(r["seconds"] for r in results), machine, command)
        chosen = write_sweep_report(out_dir / f"{prefix}_lr_sweep.md", header, results, labels,
                                    val_k)
        (out_dir / f"{prefix}_lr_sweep.json").write_text(json.dumps({
            "command": command, "machine": machine,
            "date": datetime.fromtimestamp(started, timezone.utc).isoformat(),
            "total_wall_s": total, "steps": setting.steps, "seeds": args.seeds, "lrs": args.lrs,
            "offline_lrs": args.offline_lrs,
            "selection": "mean greedy validation accuracy after step 0, mean over seeds",
            "chosen_lr": chosen, "runs": results}, indent=1) + "\n")
        plot_sweep(out_dir / f"{prefix}_lr_sweep.png", results, labels)
        say(f"wrote {prefix}_lr_sweep.md, .json and .png to {out_dir}; chosen: {chosen}")
        return
    say("building the test split")
    split, test_info = build_test_split(runs, setting, args, runs_dir)
    sampling = {"k": args.eval_samples,
                "max_new_tokens": QUICK["max_new_tokens"] if args.quick else
                (evaluation.max_new_tokens or h["sampling"]["max_new_tokens"]),
                "temperature": evaluation.temperature, "top_p": evaluation.top_p,
                "seed": test_info["seed"]}
    students = keep_students(runs, runs_dir, out_dir / "students" / prefix)
    references = {WARM_START: h["student"], TEACHER: h["teacher"]}
    tests = evaluate_all(students, runs_dir, references, setting.task, split, test_info,
                         sampling, args.jobs)
    # report
    results = [collect(run, records[run], runs_dir / run.name / f"seed{run.seed}", tests[run],
                       setting.config_alpha, sampled_tag, students[run]) for run in runs]
    ablation = {Run("rlad", args.seeds[0], None if a == setting.config_alpha else a).name: a
                for a in ALPHAS} if args.ablation else {}
    total = time.time() - started
    command, machine = provenance(load_at_start)
    skipped = sum(bool(r.get("skipped")) for r in records.values())
    header = header_lines(args, setting, test_info, sampling, started, total, skipped,
                          len(runs), sum(r["seconds"] for r in results), machine, command)
    write_report(out_dir / f"{prefix}_table.md", header, results, labels, ablation, args.seeds[0],
                 setting.levels, args.eval_samples, tests[WARM_START], tests[TEACHER],
                 h["teacher"], step_cost)
    (out_dir / f"{prefix}_runs.json").write_text(json.dumps({
        "command": command, "machine": machine,
        "date": datetime.fromtimestamp(started, timezone.utc).isoformat(),
        "total_wall_s": total, "steps": setting.steps, "seeds": args.seeds,
        "levels": setting.levels, "tuned_lr": setting.tuned_lr, "test_split": test_info,
        "sampling": sampling, "warm_start_model": h["student"], "teacher_model": h["teacher"],
        "students_dtype": STUDENTS_DTYPE, "warm_start": tests[WARM_START],
        "teacher": tests[TEACHER], "step_cost": step_cost, "runs": results}, indent=1) + "\n")
    plot_curves(out_dir / f"{prefix}_curves.png", results, labels, setting.suite.title)
    say(f"wrote {prefix}_table.md, {prefix}_runs.json and {prefix}_curves.png to {out_dir} "
        f"({total:.0f} s)")


if __name__ == "__main__":
    main()
