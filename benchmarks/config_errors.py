"""Time from the command to the config error, for bad inputs tried as a user types them.

    python benchmarks/config_errors.py --out benchmarks/results/config_errors.md

Runs ``rlad-pl fit --config configs/logic.yaml <override>`` (as ``python -m rlad_pl.cli``, this
checkout first on ``PYTHONPATH``; ``--command rlad-pl`` runs the installed entry point) once per
bad input, as a subprocess, and prints a table: the input, the exit status, the number of output
lines (blank lines ignored), whether a traceback was printed, and the seconds from start to exit.
A row passes with exit status 2, one line, no traceback and under ``--limit`` seconds (the hub
id without network under ``--hub-limit``). Exits 1 when a row fails. About 30 s on 2 idle cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "configs/logic.yaml"

# (what is wrong, override after --config configs/logic.yaml, environment changes); {tmp} is a
# scratch folder with the OVERLAYS below and without missing.yaml
CASES = [
    ("student folder missing", "--model.init_args.student /nonexistent/model", {}),
    ("data_dir missing", "--data.init_args.data_dir /nonexistent/data", {}),
    ("tokenizer folder missing", "--data.init_args.tokenizer /nonexistent/tokenizer", {}),
    ("teacher hub id, HF_HUB_OFFLINE=1", "--model.init_args.teacher gpt2",
     {"HF_HUB_OFFLINE": "1"}),
    ("teacher hub id, offline unset (no network here)", "--model.init_args.teacher gpt2",
     {"HF_HUB_OFFLINE": None}),
    ("lr -1", "--model.init_args.optimization.lr -1", {}),
    ("no teacher (TRRD needs one)", "--model.init_args.teacher null", {}),
    ("alpha 1.5", "--model.init_args.objective.init_args.alpha 1.5", {}),
    ("group size 1", "--model.init_args.sampling.num_samples 1", {}),
    ("eps_low 0", "--model.init_args.objective.init_args.eps_low 0", {}),
    ("task mismatch", "--model.init_args.task math", {}),
    ("temperature 0", "--model.init_args.sampling.temperature 0", {}),
    ("unknown key (model)", "--model.init_args.nosuchkey 1", {}),
    ("unknown method (objective class)", "--model.init_args.objective rlad_pl.objectives.NoSuch",
     {}),
    ("unknown module (objective class)", "--model.init_args.objective no_such_pkg.Objective", {}),
    ("wrong type: lr abc", "--model.init_args.optimization.lr abc", {}),
    ("wrong type: max_steps x", "--trainer.max_steps x", {}),
    ("bad YAML file", "--config {tmp}/broken.yaml", {}),
    ("missing --config file", "--config {tmp}/missing.yaml", {}),
    ("unknown key (trainer)", "--trainer.max_stepz 10", {}),
    ("unknown key (data)", "--data.init_args.prompts_per_stepp 8", {}),
    ("unknown key (objective)", "--model.init_args.objective.init_args.alpah 0.3", {}),
    ("unknown top-level key", "--nosuchkey 1", {}),
    ("wrong type: num_samples 2.5", "--model.init_args.sampling.num_samples 2.5", {}),
    ("wrong type: prompts_per_step abc", "--data.init_args.prompts_per_step abc", {}),
    ("not in Literal: clamp_form", "--model.init_args.objective.init_args.clamp_form bogus", {}),
    ("not in Literal: rollout_engine", "--model.init_args.rollout_engine bogus", {}),
    ("trainer.accelerator unknown", "--trainer.accelerator quantum", {}),
    ("trainer.precision 8", "--trainer.precision 8", {}),
    ("evaluation.top_p 2", "--model.init_args.evaluation.top_p 2", {}),
    ("max_new_tokens 0", "--model.init_args.sampling.max_new_tokens 0", {}),
    ("KDRL kd_coef -1", "--model.init_args.objective rlad_pl.objectives.KDRL "
     "--model.init_args.objective.init_args.kd_coef -1", {}),
    ("GKD without teacher", "--model.init_args.objective rlad_pl.objectives.GKD "
     "--model.init_args.teacher null", {}),
    ("unknown key (callback, in a YAML overlay)", "--config {tmp}/bad_callback.yaml", {}),
    ("unknown callback class (in a YAML overlay)", "--config {tmp}/no_callback.yaml", {}),
]
OVERLAYS = {
    "broken.yaml": "trainer:\n  max_steps: [1, 2\nmodel: {}\n",
    "bad_callback.yaml": "trainer:\n  callbacks:\n    - class_path: rlad_pl.callbacks.ProgressLog\n"
                         "      init_args: {every_n_stepz: 5}\n",
    "no_callback.yaml": "trainer:\n  callbacks:\n    - class_path: rlad_pl.callbacks.NoSuchLog\n",
}
HUB_CASE = "offline unset"


def run_case(command: list[str], override: str, env_changes: dict, tmp: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("RLAD_DEBUG", None)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    args = [*command, "fit", "--config", CONFIG, *shlex.split(override.format(tmp=tmp))]
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    seconds = time.perf_counter() - start
    output = done.stdout + done.stderr
    lines = [line for line in output.splitlines() if line.strip()]
    return {"status": done.returncode, "lines": len(lines), "traceback": "Traceback" in output,
            "seconds": seconds, "message": lines[-1] if lines else ""}


def machine() -> str:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in
                     Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.machine()} {model}, {cpus} CPU(s) usable, Python {platform.python_version()}"


def load() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "uptime unavailable"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", default=None,
                        help="the program to run (default: python -m rlad_pl.cli)")
    parser.add_argument("--limit", type=float, default=3.0, help="seconds allowed per error")
    parser.add_argument("--hub-limit", type=float, default=5.0,
                        help="seconds allowed for the hub id without network")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here (.md)")
    args = parser.parse_args()
    command = shlex.split(args.command) if args.command else [sys.executable, "-m", "rlad_pl.cli"]
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before = load()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in OVERLAYS.items():
            Path(tmp, name).write_text(text)
        for name, override, env in CASES:
            result = run_case(command, override, env, tmp)
            limit = args.hub_limit if HUB_CASE in name else args.limit
            result["ok"] = (result["status"] == 2 and result["lines"] == 1
                            and not result["traceback"] and result["seconds"] < limit)
            rows.append((name, override, result))
            print(f"{'ok  ' if result['ok'] else 'FAIL'} {result['seconds']:5.2f} s  {name}: "
                  f"{result['message'][:150]}", flush=True)
    load_after = load()
    shown = " ".join(command) if args.command else "python -m rlad_pl.cli"
    table = [
        "# Time from command to config error",
        "",
        f"Command: `python benchmarks/config_errors.py{' --command ' + args.command if args.command else ''}` "
        f"(each row: `{shown} fit --config {CONFIG} <input>`, a subprocess, this checkout on "
        "PYTHONPATH, the caller's environment plus the row's changes).",
        f"Date: {started}. Machine: {machine()}.",
        f"Load before: `{load_before}`; after: `{load_after}`.",
        f"A row passes with exit status 2, one line (blank lines ignored), no traceback and under "
        f"{args.limit:g} s ({args.hub_limit:g} s for the hub id without network).",
        "",
        "| input | override | exit | lines | traceback | seconds | pass | message |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, override, r in rows:
        message = r["message"].replace("|", "\\|")
        table.append(f"| {name} | `{override}` | {r['status']} | {r['lines']} | "
                     f"{'yes' if r['traceback'] else 'no'} | {r['seconds']:.2f} | "
                     f"{'yes' if r['ok'] else '**no**'} | {message} |")
    passed = sum(r["ok"] for _, _, r in rows)
    table += ["", f"{passed} of {len(rows)} pass."]
    text = "\n".join(table) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0 if passed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
