"""rlad-pl GRPO against TRL's GRPOTrainer on an embedded task: same model, prompts, reward, lr.

    OMP_NUM_THREADS=1 python benchmarks/grpo_vs_trl.py --task math --steps 120 --seeds 0 1 --jobs 2

Every run is a subprocess with one torch thread. rlad-pl trains through its CLI from a config
file written into the run folder (``configs/<task>.yaml`` with ``objective:
rlad_pl.objectives.GRPO`` (older configs: ``method: grpo``), no teacher, the overrides below);
TRL trains ``GRPOTrainer`` on the same prompts in the same order (the rlad-pl
DataModule's training stream, unshuffled), with a reward function that calls the same
``rlad_pl`` task ``score``. Both validate greedily on the DataModule's validation split every
``--val-every`` steps (and at step 0) with the KV-cache decoder.

Settings matched (rlad-pl key -> TRL key): group_size -> num_generations; prompts_per_step x G ->
per_device_train_batch_size (one generation, one optimizer step per step); lr, warmup_steps,
constant schedule -> learning_rate, warmup_steps, ``constant_with_warmup``; AdamW betas and
weight decay; gradient_clip_val -> max_grad_norm; eps_low / eps_high -> epsilon / epsilon_high;
aggregation seq-mean-token-mean -> loss_type ``grpo`` (token-mean -> ``dapo``,
seq-mean-token-sum-norm -> ``dr_grpo``); advantage_scale std -> scale_rewards ``group``; beta 0;
temperature, top_p, max_new_tokens -> max_completion_length. Not matched (TRL has no knob):
rlad-pl leaves groups whose rewards are all equal out of the update and its loss mean
(``drop_zero_variance_groups``); TRL keeps them in the mean with advantage 0. TRL's group std is
the sample std (n - 1), rlad-pl's the population std; the warm-up ramps differ by one step.

Writes ``<out>.json`` (every curve), ``<out>.png`` (train reward and validation accuracy vs step,
both systems, every seed) and ``<out>.md`` (command, machine, date, table).
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
AGG_TO_TRL = {"seq-mean-token-mean": "grpo", "token-mean": "dapo",
              "seq-mean-token-sum-norm": "dr_grpo"}


# ------------------------------------------------------------------------------ settings
def grouped(config: dict) -> bool:
    """Whether the config uses the objective / sampling / optimization groups (newer layout)."""
    return "objective" in config["model"]["init_args"]


def recipe(args) -> dict:
    """The rlad-pl config of one GRPO run (from configs/<task>.yaml) with the overrides.

    Both config layouts are handled: the grouped one (``objective: rlad_pl.objectives.GRPO``,
    ``sampling``, ``optimization``, ``evaluation``) and the older flat one (``method: grpo``)."""
    with open(ROOT / "configs" / f"{args.task}.yaml") as f:
        config = yaml.safe_load(f)
    model = config["model"]["init_args"]
    model["teacher"] = None
    if grouped(config):
        clip = model["objective"].get("init_args", {})
        keep = ("eps_low", "eps_high", "aggregation", "sum_norm_constant")
        model["objective"] = {"class_path": "rlad_pl.objectives.GRPO",
                              "init_args": {k: v for k, v in clip.items() if k in keep}}
        model.setdefault("evaluation", {})["samples"] = 0
        if args.lr is not None:
            model.setdefault("optimization", {})["lr"] = args.lr
    else:
        model.update(method="grpo", eval_samples=0)
        for key in ("alpha", "teacher_clip"):
            model.pop(key, None)
        if args.lr is not None:
            model["lr"] = args.lr
    for item in args.set or []:  # model.init_args overrides, key=value (YAML value); a dotted
        key, value = item.split("=", 1)  # key (optimization.lr) reaches into a group
        *groups, leaf = key.split(".")
        target = model
        for g in groups:
            target = target.setdefault(g, {})
        target[leaf] = yaml.safe_load(value)
    data = config["data"]["init_args"]
    if args.val_size is not None:
        data["val_size_per_subset"] = args.val_size
    return config


def model_settings(config: dict) -> dict:
    """The GRPO recipe as one flat dict (the flat layout's key names), defaults filled in."""
    import dataclasses
    import inspect

    from rlad_pl.module import RLADModule

    defaults = {k: p.default for k, p in inspect.signature(RLADModule.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty}
    model = config["model"]["init_args"]
    if not grouped(config):
        return {**defaults, **model}
    from rlad_pl.objectives import GRPO

    flat = {k: v for k, v in {**defaults, **model}.items()
            if k not in ("objective", "sampling", "optimization", "evaluation")}
    sampling = {**dataclasses.asdict(defaults["sampling"]), **model.get("sampling", {})}
    flat.update(group_size=sampling["num_samples"], temperature=sampling["temperature"],
                top_p=sampling["top_p"], max_new_tokens=sampling["max_new_tokens"])
    flat.update({**dataclasses.asdict(defaults["optimization"]), **model.get("optimization", {})})
    objective = GRPO(**model["objective"].get("init_args", {}))
    flat.update(eps_low=objective.eps_low, eps_high=objective.eps_high,
                aggregation=objective.aggregation, method="grpo")
    return flat


# --------------------------------------------------------------------------------- data
def datamodule(config: dict):
    from rlad_pl.data import PromptDataModule

    dm = PromptDataModule(**config["data"]["init_args"])
    dm.setup("fit")
    return dm


def val_records(dm) -> list[dict]:
    return [record for record, _ in dm.splits["val"]]


def greedy_accuracy(task, model, tokenizer, records, max_new_tokens: int) -> dict:
    """Greedy accuracy per subset and their mean (the rlad-pl validation's `val/accuracy/mean`)."""
    from rlad_pl.evaluation import score_records

    scores = score_records(task, model, tokenizer, records, max_new_tokens=max_new_tokens,
                           batch_size=100)
    per: dict[str, list[bool]] = {}
    for record, s in zip(records, scores, strict=True):
        per.setdefault(task.subset(record), []).append(bool(s[0]["correct"]))
    out = {k: sum(v) / len(v) for k, v in sorted(per.items())}
    out["mean"] = sum(out.values()) / len(out)
    return out


# ------------------------------------------------------------------------------ rlad-pl
def run_rlad(args, config: dict, seed: int, folder: Path) -> dict:
    config = copy.deepcopy(config)
    config["seed_everything"] = seed
    config["model"]["init_args"]["seed"] = seed
    trainer = config["trainer"]
    trainer.update(max_steps=args.steps, val_check_interval=args.val_every,
                   num_sanity_val_steps=-1, enable_progress_bar=False)
    trainer["logger"] = {"class_path": "lightning.pytorch.loggers.CSVLogger",
                         "init_args": {"save_dir": str(folder), "name": "rlad", "version": 0}}
    trainer["callbacks"] = [{"class_path": "rlad_pl.callbacks.Evaluation"},
                            {"class_path": "rlad_pl.callbacks.HFExport"}]
    trainer["enable_checkpointing"] = False
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "rlad_pl.cli", "fit", "--config", str(path)]
    start = time.time()
    with open(folder / "log.txt", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    seconds = time.time() - start
    return {**rlad_curves(folder, args), "seconds": seconds, "command": " ".join(cmd)}


def rlad_curves(folder: Path, args) -> dict:
    """Train and validation curves from the run's CSV log (also of an unfinished run)."""
    train, val = {}, {}
    with open(folder / "rlad" / "version_0" / "metrics.csv") as f:
        for row in csv.DictReader(f):
            step = int(row["step"])
            if row.get("train/reward/mean"):
                train[step] = {"reward": float(row["train/reward/mean"]),
                               "accuracy": float(row["train/accuracy"]),
                               "zero_variance_frac": float(row["train/zero_variance_frac"]),
                               "entropy": _float(row.get("train/entropy")),
                               "grad_norm": _float(row.get("train/grad_norm"))}
            if row.get("val/accuracy/mean"):
                val[step] = float(row["val/accuracy/mean"])
    # validation rows: the sanity pass (step 0), then one every val_every steps, in order
    points = [0] + list(range(args.val_every, args.steps + 1, args.val_every))
    val_curve = [(p, val[s]) for p, s in zip(points, sorted(val), strict=False)]
    return {"train": [train[s] for s in sorted(train)], "val": val_curve}


def trl_curves_from_log(folder: Path) -> dict:
    """Train curve of an unfinished TRL run from the trainer's printed logs (no accuracy and no
    validation: those live in the worker's memory until it ends)."""
    import ast

    train = []
    for line in (folder / "worker.txt").read_text().splitlines():
        if line.startswith("{'loss'"):
            h = ast.literal_eval(line)
            train.append({"reward": float(h["reward"]), "accuracy": None,
                          "zero_variance_frac": float(h["frac_reward_zero_std"]),
                          "entropy": float(h["entropy"]), "grad_norm": float(h["grad_norm"])})
    return {"train": train, "val": []}


def partial_result(system: str, folder: Path, args) -> dict | None:
    try:
        curves = rlad_curves(folder, args) if system == "rlad" else trl_curves_from_log(folder)
    except (OSError, KeyError, ValueError):
        return None
    return {**curves, "seconds": float("nan"), "partial": True} if curves["train"] else None


def _float(value):
    return float(value) if value not in (None, "") else None


# ---------------------------------------------------------------------------------- TRL
def trl_args(settings: dict, args, seed: int, folder: Path, batch: int):
    from trl import GRPOConfig

    if settings["lr_schedule"] != "constant":
        raise SystemExit("only the constant schedule (after warm-up) is mapped to TRL")
    return GRPOConfig(
        output_dir=str(folder / "trl_out"), max_steps=args.steps, seed=seed,
        per_device_train_batch_size=batch, num_generations=settings["group_size"],
        steps_per_generation=1, num_iterations=settings["ppo_epochs"],
        learning_rate=settings["lr"], lr_scheduler_type="constant_with_warmup",
        warmup_steps=settings["warmup_steps"], adam_beta1=settings["betas"][0],
        adam_beta2=settings["betas"][1], weight_decay=settings["weight_decay"],
        max_grad_norm=settings["gradient_clip_val"] or 1e9,
        epsilon=settings["eps_low"], epsilon_high=settings["eps_high"], beta=settings["beta"],
        loss_type=AGG_TO_TRL[settings["aggregation"]],
        scale_rewards="group" if settings["advantage_scale"] == "std" else "none",
        temperature=settings["temperature"], top_p=settings["top_p"], top_k=0,
        max_completion_length=settings["max_new_tokens"], shuffle_dataset=False,
        gradient_checkpointing=False, use_cpu=True, bf16=False, report_to="none",
        save_strategy="no", logging_steps=1, disable_tqdm=True, dataloader_num_workers=0)


def run_trl(args, config: dict, seed: int, folder: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback, set_seed
    from trl import GRPOTrainer

    from rlad_pl.models import load_model, load_tokenizer

    settings = model_settings(config)
    dm = datamodule(config)
    task, G = dm.task, settings["group_size"]
    stream = dm.train_stream(rank=0, world_size=1)
    rows = []
    for i, batch in enumerate(stream):  # the prompts rlad-pl trains on, in its order
        if i == args.steps:
            break
        rows += [{"prompt": p, "answer": r["answer"], "record": json.dumps(r)}
                 for p, r in zip(batch["prompts"], batch["records"], strict=True)]
    records = val_records(dm)
    set_seed(seed)
    tokenizer = load_tokenizer(settings["student"])
    model = load_model(settings["student"]).float()
    log: list[dict] = []

    def reward(prompts, completions, record, **kwargs):
        scores = [task.score(c, json.loads(r)) for c, r in zip(completions, record, strict=True)]
        totals = [s["total"] for s in scores]
        groups = [totals[i:i + G] for i in range(0, len(totals), G)]
        log.append({"reward": sum(totals) / len(totals),
                    "accuracy": sum(float(s["correct"]) for s in scores) / len(scores),
                    "zero_variance_frac": sum(len(set(g)) == 1 for g in groups) / len(groups)})
        return totals

    val: list[tuple[int, float]] = []

    class Validate(TrainerCallback):
        def _run(self, state, model):
            was = model.training
            with torch.no_grad():
                acc = greedy_accuracy(task, model, tokenizer, records, settings["max_new_tokens"])
            model.train(was)
            val.append((state.global_step, acc["mean"]))

        def on_train_begin(self, a, state, control, model=None, **kw):
            self._run(state, model)

        def on_step_end(self, a, state, control, model=None, **kw):
            if state.global_step % args.val_every == 0 or state.global_step == args.steps:
                self._run(state, model)

    batch = G * config["data"]["init_args"]["prompts_per_step"]
    trainer = GRPOTrainer(model=model, reward_funcs=reward,
                          args=trl_args(settings, args, seed, folder, batch),
                          train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                          callbacks=[Validate()])
    start = time.time()
    trainer.train()
    seconds = time.time() - start
    history = {h["step"]: h for h in trainer.state.log_history if "loss" in h}
    for i, entry in enumerate(log):
        h = history.get(i + 1, {})
        entry.update(entropy=h.get("entropy"), grad_norm=h.get("grad_norm"),
                     trl_reward=h.get("reward"))
    return {"train": log, "val": val, "seconds": seconds}


# ------------------------------------------------------------------------------ driver
def worker(args) -> None:
    folder = Path(args.worker_dir)
    config = recipe(args)
    if args.worker == "rlad":
        result = run_rlad(args, config, args.worker_seed, folder)
    else:
        result = run_trl(args, config, args.worker_seed, folder)
    (folder / "result.json").write_text(json.dumps(result))


def machine() -> str:
    import torch
    import transformers
    import trl

    return (f"{platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
            f"transformers {transformers.__version__}, trl {trl.__version__}; "
            f"load average {os.getloadavg()[0]:.1f} at the start")


def smooth(values: list[float], window: int) -> list[float]:
    out = []
    for i in range(len(values)):
        part = values[max(0, i - window + 1):i + 1]
        out.append(sum(part) / len(part))
    return out


def quarters(values: list[float]) -> list[float]:
    n = len(values)
    return [sum(values[n * q // 4:n * (q + 1) // 4]) / max(1, n * (q + 1) // 4 - n * q // 4)
            for q in range(4)]


def plot(path: Path, results: dict, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = {"rlad": "tab:blue", "trl": "tab:orange"}
    names = {"rlad": "rlad-pl GRPO", "trl": "TRL GRPOTrainer"}
    for (system, seed), run in sorted(results.items()):
        reward = [s["reward"] for s in run["train"]]
        style = {"color": colors[system], "linestyle": "-" if seed % 2 == 0 else "--"}
        a.plot(range(len(reward)), reward, alpha=0.15, color=colors[system])
        a.plot(range(len(reward)), smooth(reward, 10), label=f"{names[system]} seed {seed}",
               **style)
        steps, accs = zip(*run["val"], strict=True) if run["val"] else ((), ())
        b.plot(steps, accs, marker="o", label=f"{names[system]} seed {seed}", **style)
    a.set(xlabel="step (rollout)", ylabel="train reward (mean, 10-step moving average)",
          title=title)
    b.set(xlabel="step", ylabel="validation accuracy (greedy)")
    a.legend(fontsize=8)
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_markdown(path: Path, results: dict, args, command: str, info: str, wall: float,
                   settings: dict) -> None:
    names = {"rlad": "rlad-pl GRPO", "trl": "TRL GRPOTrainer"}
    lines = [f"# {args.title}", "",
             f"Command: `{command}`  ", f"Machine: {info}  ",
             f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC  ",
             f"Wall time of this invocation: {wall:.0f} s ({args.jobs} run(s) at a time, "
             "OMP_NUM_THREADS=1 each)", "",
             f"Recipe (configs/{args.task}.yaml with the GRPO objective, no teacher): "
             + ", ".join(f"{k} {settings[k]}" for k in (
                 "group_size", "temperature", "top_p", "max_new_tokens", "lr", "warmup_steps",
                 "lr_schedule", "betas", "gradient_clip_val", "eps_low", "eps_high",
                 "aggregation", "advantage_scale", "drop_zero_variance_groups", "beta"))
             + f"; {args.steps} steps; validation: {args.val_size or 'config'} problems per "
             "subset, greedy.", "",
             "Train reward: mean task reward of the step's G x prompts completions (quarters of "
             "the run: mean over steps 1-25%, ..., 76-100%). Validation: greedy accuracy, mean "
             "over subsets.", "",
             "Partial: the run had not finished when the report was written; its quarters are "
             "of the steps it had done (TRL's unfinished runs carry no accuracy or validation).",
             "", "| system | seed | steps done | train reward by quarter | train accuracy first / "
             "last quarter | groups without variance first / last quarter | val accuracy (step: "
             "acc) | run time (s) |", "|---|---|---|---|---|---|---|---|"]
    for (system, seed), run in sorted(results.items()):
        r = quarters([s["reward"] for s in run["train"]])
        accs = [s["accuracy"] for s in run["train"]]
        acc = quarters(accs) if None not in accs else None
        zv = quarters([s["zero_variance_frac"] for s in run["train"]])
        val = ", ".join(f"{s}: {v:.3f}" for s, v in run["val"]) or "-"
        done = len(run["train"]) if not run.get("partial") else f"{len(run['train'])} (partial)"
        seconds = "-" if run.get("partial") else f"{run['seconds']:.0f}"
        lines.append(f"| {names[system]} | {seed} | {done} | "
                     f"{' / '.join(f'{x:.3f}' for x in r)} | "
                     f"{f'{acc[0]:.3f} / {acc[3]:.3f}' if acc else '-'} | "
                     f"{zv[0]:.2f} / {zv[3]:.2f} | {val} | {seconds} |")
    lines += ["", "Paired difference (same prompts at every step): mean over the steps both "
              "systems did of rlad-pl's train reward minus TRL's, with its standard error.", "",
              "| seed | steps | rlad-pl - TRL |", "|---|---|---|"]
    for seed in sorted({k for _, k in results}):
        if ("rlad", seed) in results and ("trl", seed) in results:
            a, b = results[("rlad", seed)]["train"], results[("trl", seed)]["train"]
            d = [x["reward"] - y["reward"] for x, y in zip(a, b, strict=False)]
            mean = sum(d) / len(d)
            se = (sum((x - mean) ** 2 for x in d) / (len(d) - 1) / len(d)) ** 0.5
            lines.append(f"| {seed} | {len(d)} | {mean:+.4f} ± {se:.4f} |")
    lines += ["", f"![curves]({Path(args.out).name}.png)", ""]
    path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="math", help="configs/<task>.yaml (math or logic)")
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--systems", nargs="+", default=["rlad", "trl"], choices=["rlad", "trl"])
    ap.add_argument("--lr", type=float)
    ap.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override model.init_args.KEY of the recipe (both systems)")
    ap.add_argument("--val-every", type=int, default=40)
    ap.add_argument("--val-size", type=int, help="validation problems per subset")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/grpo_vs_trl"))
    ap.add_argument("--runs-dir", default=str(ROOT / "runs/grpo_vs_trl"))
    ap.add_argument("--title", default="GRPO: rlad-pl vs TRL GRPOTrainer")
    ap.add_argument("--partial", action="store_true",
                    help="start nothing: write the report from finished runs and the logs of "
                         "unfinished ones (marked partial)")
    ap.add_argument("--worker", choices=["rlad", "trl"], help=argparse.SUPPRESS)
    ap.add_argument("--worker-seed", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--worker-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)

    command = "OMP_NUM_THREADS=1 python benchmarks/grpo_vs_trl.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    info, start = machine(), time.time()
    runs_dir = Path(args.runs_dir)
    plan = [(system, seed) for seed in args.seeds for system in args.systems]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
           "TOKENIZERS_PARALLELISM": "false"}
    passthrough = [a for a in (sys.argv[1:] if argv is None else argv)]
    pending, running, results = list(plan), {}, {}
    while pending or running:
        while pending and len(running) < args.jobs:
            system, seed = pending.pop(0)
            folder = runs_dir / f"{system}_seed{seed}"
            if (folder / "result.json").exists():
                results[(system, seed)] = json.loads((folder / "result.json").read_text())
                continue
            if args.partial:
                found = partial_result(system, folder, args)
                if found is not None:
                    results[(system, seed)] = found
                continue
            folder.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, __file__, *passthrough, "--worker", system,
                   "--worker-seed", str(seed), "--worker-dir", str(folder)]
            out = open(folder / "worker.txt", "w")
            running[(system, seed)] = (subprocess.Popen(cmd, env=env, stdout=out,
                                                        stderr=subprocess.STDOUT), out)
            print(f"started {system} seed {seed}", flush=True)
        for key, (proc, out) in list(running.items()):
            if proc.poll() is not None:
                out.close()
                del running[key]
                folder = runs_dir / f"{key[0]}_seed{key[1]}"
                if proc.returncode:
                    raise SystemExit(f"{key} failed, see {folder}/worker.txt")
                results[key] = json.loads((folder / "result.json").read_text())
                print(f"done {key[0]} seed {key[1]}", flush=True)
        time.sleep(2)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = model_settings(recipe(args))
    plot(Path(f"{out}.png"), results, f"{args.task}: GRPO train reward")
    write_markdown(Path(f"{out}.md"), results, args, command, info, time.time() - start,
                   settings)
    Path(f"{out}.json").write_text(json.dumps(
        {"command": command, "machine": info, "settings": {k: str(v) for k, v in settings.items()},
         "runs": {f"{s}_seed{k}": r for (s, k), r in results.items()}}, indent=1))
    print(f"wrote {out}.md / .png / .json", flush=True)


if __name__ == "__main__":
    main()
