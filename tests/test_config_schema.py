"""The pre-flight's static check of keys, types and class paths (rlad_pl.config_schema): it
accepts every shipped config, overlay and README command line, rejects bad input with one
line, and imports neither torch nor Lightning."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from rlad_pl import cli

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs").glob("*.yaml"))
OVERLAYS = ["configs/logic-grpo.yaml", "configs/logic-kdrl.yaml", "configs/logic-offline.yaml",
            *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs/strategy").glob("*.yaml"))]


def readme_commands() -> list[list[str]]:
    """``rlad-pl fit|validate|test ...`` lines of the README (continuations joined)."""
    text = (ROOT / "README.md").read_text().replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        match = re.search(r"rlad[-_.]pl(?:\.cli)? ((?:fit|validate|test) [^`#]*)", line)
        if match:
            commands.append(shlex.split(match.group(1)))
    return commands


def static_checks(args: list[str]) -> None:
    """What the pre-flight checks before the hub and the objective (no import of torch)."""
    collected = cli.collect_config(args)
    if collected is None:  # --print_config, --help: not checked here
        return
    config, unsure = collected
    cli._check_trainer(config.get("trainer"))
    cli.check_schema(config, args[0], unsure)
    model_path, model_args = cli._class_and_args(config.get("model"))
    if model_path == cli.RL_MODULE:
        objective_path, _ = cli._class_and_args(model_args.get("objective"))
        cli._check_rl_values(model_args, objective_path or cli.TRRD_PATH)
        cli._check_task_names(model_args, *cli._class_and_args(config.get("data")))


@pytest.mark.parametrize("args", [["fit", "--config", c] for c in CONFIGS]
                         + [["fit", "--config", "configs/logic.yaml", "--config", o]
                            for o in OVERLAYS]
                         + readme_commands(), ids=lambda args: " ".join(args[1:])[:80])
def test_valid_configs_pass(args, monkeypatch):
    monkeypatch.chdir(ROOT)
    static_checks(args)


def test_readme_has_commands():
    assert len(readme_commands()) >= 8


def test_common_valid_overrides_pass(monkeypatch):
    monkeypatch.chdir(ROOT)
    for override in ["--model.student tiny-kk-student --model.init_args.optimization.lr 1e-4",
                     "--trainer.logger false --trainer.val_check_interval 0.5",
                     "--model.init_args.objective.init_args.teacher_clip null",
                     "--trainer.callbacks+=rlad_pl.callbacks.ProgressLog "
                     "--trainer.callbacks.every_n_steps 3",
                     "--data.init_args.task_kwargs.people [3,4] --trainer.precision 16-mixed",
                     "--trainer.max_time 00:01:00:00 --trainer.default_root_dir /tmp/x",
                     "--model.init_args.objective rlad_pl.objectives.GKD "
                     "--model.init_args.sampling.num_samples 1"]:
        static_checks(["fit", "--config", "configs/logic.yaml", *shlex.split(override)])


@pytest.mark.parametrize("override, fragments", [
    ("--model.init_args.nosuchkey 1", ["model.init_args.nosuchkey=1", "not accepted by",
                                       "RLADModule"]),
    ("--model.init_args.objective.init_args.alpah 0.3", ["alpah", "did you mean alpha"]),
    ("--model.init_args.objective rlad_pl.objectives.NoSuch",
     ["objective.class_path='rlad_pl.objectives.NoSuch'", "has no 'NoSuch'", "TRRD"]),
    ("--model.init_args.objective no_such_pkg.Objective", ["no module named 'no_such_pkg'"]),
    ("--model.init_args.optimization.lr abc", ["optimization.lr='abc'", "expected float"]),
    ("--data.init_args.prompts_per_step abc", ["prompts_per_step='abc'", "expected int"]),
    ("--model.init_args.rollout_engine bogus", ["rollout_engine='bogus'", "'kv_decode'"]),
    ("--trainer.max_stepz 10", ["trainer.max_stepz=10", "did you mean max_steps"]),
    ("--nosuchkey 1", ["nosuchkey=1", "not a key of `rlad-pl fit`"]),
    ("--model.init_args.sampling.num_samples 1", ["num_samples=1", ">= 2"]),
    ("--model.init_args.sampling.temperature 0", ["sampling.temperature=0.0", "must be > 0"]),
    ("--model.init_args.task math", ["model.init_args.task='math'", "the data provides"]),
])
def test_bad_values_are_one_line_without_torch(override, fragments, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = ["fit", "--config", "configs/logic.yaml", *shlex.split(override)]
    with pytest.raises(cli.ConfigError) as caught:
        static_checks(args)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_callback_in_a_yaml_list_is_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    overlay = tmp_path / "callbacks.yaml"
    overlay.write_text("trainer:\n  callbacks:\n    - class_path: rlad_pl.callbacks.ProgressLog\n"
                       "      init_args: {every_n_stepz: 5}\n")
    with pytest.raises(cli.ConfigError, match=r"trainer\.callbacks\[0\]\.init_args\."
                                              r"every_n_stepz=5: not accepted.*every_n_steps"):
        static_checks(["fit", "--config", "configs/logic.yaml", "--config", str(overlay)])


def test_static_checks_import_neither_torch_nor_lightning():
    code = ("import sys; from tests.test_config_schema import static_checks; "
            "static_checks(['fit', '--config', 'configs/logic.yaml', '--config', "
            "'configs/strategy/fsdp.yaml']); "
            "print([m for m in ('torch', 'lightning', 'transformers') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.stdout.strip().splitlines()[-1:] == ["[]"], done.stdout + done.stderr


@pytest.mark.parametrize("override", [
    "--model.init_args.nosuchkey 1",
    "--trainer.max_steps x",
    "--model.init_args.objective rlad_pl.objectives.NoSuch",
    "--model.init_args.sampling.num_samples 1",
])
def test_cli_reports_schema_errors_as_one_line(override):
    """As a user runs it: exit status 2, one line, no traceback (not timed)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("RLAD_DEBUG", None)
    done = subprocess.run([sys.executable, "-m", "rlad_pl.cli", "fit", "--config",
                           "configs/logic.yaml", *shlex.split(override)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=600)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("rlad-pl: config error: ")
