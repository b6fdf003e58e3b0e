"""Plan and run helpers of benchmarks/reproduce.py (no training) and the baseline overlays."""

import contextlib
import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest
import yaml

from rlad_pl.cli import main
from rlad_pl.module import METRICS

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))  # the script imports its sibling reproduce_report
_spec = importlib.util.spec_from_file_location("reproduce", REPO / "benchmarks" /
                                              "reproduce.py")
rk = sys.modules["reproduce"] = importlib.util.module_from_spec(_spec)  # dataclasses need it
_spec.loader.exec_module(rk)


def test_overrides_set_nested_keys_on_a_copy():
    cfg = {"model": {"init_args": {"alpha": 0.5}}, "seed_everything": 0}
    out = rk.apply_overrides(cfg, {"model.init_args.alpha": 0.1, "trainer.max_steps": 3,
                                   "seed_everything": 2})
    assert out == {"model": {"init_args": {"alpha": 0.1}}, "trainer": {"max_steps": 3},
                   "seed_everything": 2}
    assert cfg["model"]["init_args"]["alpha"] == 0.5
    assert rk.dotted_get(out, "trainer.max_steps") == 3
    assert rk.dotted_get(out, "trainer.devices", "x") == "x"


def test_cli_args_format():
    assert rk.cli_args({"a.b": None, "c": True, "d": 0.5, "e": "x y"}) == [
        "--a.b=null", "--c=true", "--d=0.5", "--e=x y"]


def test_set_overrides_reach_every_rl_run_and_bad_ones_are_refused(capsys):
    args = rk.parse_args(["--set", "model.init_args.optimization.lr=5e-5",
                          "--set", "data.init_args.seed=3"])
    assert args.rl_set == {"model.init_args.optimization.lr": 5e-5, "data.init_args.seed": 3}
    setting = rk.read_setting(args)
    # the base of every RL run
    assert rk.dotted_get(setting.rl, "model.init_args.optimization.lr") == 5e-5
    out = rk.rl_overrides(rk.Run("grpo", 1), 10, 5, Path("runs"), False, args.rl_set)
    assert out["model.init_args.optimization.lr"] == 5e-5
    assert out["data.init_args.seed"] == 1  # the run's own seed wins
    with pytest.raises(SystemExit):
        rk.parse_args(["--set", "lr"])
    assert "--set 'lr': expected KEY=VALUE" in capsys.readouterr().err


def test_tags_read_are_documented_rl_metrics():
    for tag in (rk.REWARD_TAG, rk.ZERO_VARIANCE_TAG, rk.VAL_TAG):
        assert tag in METRICS


def test_only_model_checkpoint_moves():
    callbacks = [{"class_path": "rlad_pl.callbacks.HFExport"},
                 {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                  "init_args": {"dirpath": "runs/logic/checkpoints", "every_n_train_steps": 50}}]
    out = rk.callbacks_with_checkpoint_dir(callbacks, "/r/seed1/checkpoints")
    assert out[0] == callbacks[0]
    assert out[1]["init_args"] == {"dirpath": "/r/seed1/checkpoints", "every_n_train_steps": 50}
    assert callbacks[1]["init_args"]["dirpath"] == "runs/logic/checkpoints"


def test_plan_is_seed_major_and_ablation_reuses_the_config_alpha():
    runs = rk.plan_runs(["grpo", "rlad"], [0, 1], ablation=True, config_alpha=0.5)
    assert [(r.name, r.seed) for r in runs] == [
        ("grpo", 0), ("rlad", 0), ("grpo", 1), ("rlad", 1), ("rlad-alpha0.1", 0),
        ("rlad-alpha0.3", 0), ("rlad-alpha0.7", 0), ("rlad-alpha0.9", 0)]
    runs = rk.plan_runs(["grpo"], [3], ablation=True, config_alpha=0.5)
    assert [r.name for r in runs] == ["grpo", "rlad-alpha0.1", "rlad-alpha0.3", "rlad",
                                      "rlad-alpha0.7", "rlad-alpha0.9"]
    assert rk.plan_runs(["kdrl"], [0, 1, 2], ablation=False, config_alpha=0.5) == [
        rk.Run("kdrl", 0), rk.Run("kdrl", 1), rk.Run("kdrl", 2)]


def resolved_config(*configs: str) -> dict:
    """The config `rlad-pl fit` builds from `configs` (`--print_config`), as dotted keys."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        main(["fit", *(a for c in configs for a in ("--config", str(REPO / c))),
              "--print_config"])
    assert done.value.code == 0

    def flatten(node, prefix=""):
        if isinstance(node, dict):
            return {k: v for key, value in node.items()
                    for k, v in flatten(value, f"{prefix}{key}.").items()}
        return {prefix[:-1]: node}

    return flatten(yaml.safe_load(out.getvalue()))


def differing(a: dict, b: dict) -> set[str]:
    return {k for k in a.keys() | b.keys() if a.get(k, "<absent>") != b.get(k, "<absent>")}


# What an RL overlay may change: the objective (class and hyper-parameters) and the teacher, the
# logger name and the callbacks
# (the list repeats the base's with the run's checkpoint folder). Everything else (budget, data,
# sampling, evaluation) comes from logic.yaml, so every method runs the same budget.
RL_OVERLAY_KEYS = ("model.init_args.objective.", "model.init_args.teacher",
                   "trainer.logger.init_args.name", "trainer.callbacks")


@pytest.mark.parametrize("task", sorted(rk.SUITES))
@pytest.mark.parametrize("method", ["grpo", "kdrl"])
def test_rl_overlays_change_only_the_method(task, method):
    suite = rk.SUITES[task]
    base = resolved_config(suite.base)
    composed = resolved_config(*rk.method_configs(suite, method))
    changed = differing(base, composed)
    assert changed and all(k.startswith(RL_OVERLAY_KEYS) for k in changed), sorted(changed)
    assert composed["trainer.logger.init_args.name"] == f"{task}-{method}"
    assert composed["model.init_args.objective.class_path"] == \
        f"rlad_pl.objectives.{method.upper()}"
    base_callbacks = rk.load_config(suite.base)["trainer"]["callbacks"]
    overlay_callbacks = rk.load_config(suite.overlays[method])["trainer"]["callbacks"]
    assert overlay_callbacks == rk.callbacks_with_checkpoint_dir(
        base_callbacks, f"runs/{task}-{method}/checkpoints")


@pytest.mark.parametrize("task", sorted(rk.SUITES))
def test_offline_overlay_keeps_the_budget_and_swaps_module_and_data(task):
    suite = rk.SUITES[task]
    base = resolved_config(suite.base)
    composed = resolved_config(*rk.method_configs(suite, "offline"))  # rlad_pl.sft is rlad-pl
    for key in ("seed_everything", "trainer.max_steps", "trainer.val_check_interval",
                "trainer.check_val_every_n_epoch", "trainer.accelerator", "trainer.devices"):
        assert composed[key] == base[key], key
    assert composed["model.class_path"] == "rlad_pl.sft.SFTModule"
    assert composed["data.class_path"] == "rlad_pl.sft.SFTDataModule"
    assert composed["trainer.callbacks"] == []
    assert composed["model.init_args.model"] == base["model.init_args.student"]
    # keys the module and the datamodule share must agree (Lightning merges their hparams)
    shared = {k.removeprefix("model.") for k in composed if k.startswith("model.init_args.")}
    for key in shared & {k.removeprefix("data.") for k in composed if k.startswith("data.")}:
        assert composed[f"model.{key}"] == composed[f"data.{key}"], key
    for key in ("model.init_args.sampling.num_samples", rk.ALPHA_KEY):  # the RL module's
        assert key not in composed, key


def test_lr_sweep_plans_every_method_at_every_lr_with_its_own_lr_key(tmp_path, capsys):
    runs = rk.plan_sweep(["offline", "grpo", "kdrl"], [0], [1e-5, 3e-5], [1e-3])
    assert [r.name for r in runs] == ["grpo-lr1e-05", "kdrl-lr1e-05", "grpo-lr3e-05",
                                      "kdrl-lr3e-05", "offline-lr0.001"]
    runs = rk.plan_sweep(["grpo", "offline"], [0], [1e-5], [1e-5])
    assert [r.name for r in runs] == ["grpo-lr1e-05", "offline-lr1e-05"]
    args = rk.parse_args(["--lrs", "1e-5", "3e-5", "--set", "model.init_args.optimization.lr=1"])
    rl = rk.rl_overrides(runs[0], 10, 5, tmp_path, False, args.rl_set)
    assert rl[rk.LR_KEYS["rl"]] == 1e-5  # the sweep's lr wins over --set
    sft = rk.sft_overrides(runs[1], 10, 5, tmp_path, tmp_path / "r", False)
    assert sft[rk.LR_KEYS["offline"]] == 1e-5
    assert rk.LR_KEYS["rl"] not in sft
    assert rk.LR_KEYS["offline"] not in rk.rl_overrides(rk.Run("grpo", 0), 10, 5, tmp_path,
                                                        False)
    # the keys are the configs' own lr keys
    for suite in rk.SUITES.values():
        assert rk.dotted_get(rk.load_config(suite.base), rk.LR_KEYS["rl"]) is not None
        assert rk.dotted_get(rk.load_config(suite.overlays["offline"]), rk.LR_KEYS["offline"]) \
            is not None
    assert args.offline_lrs == [1e-5, 3e-5]  # default: the RL grid
    assert rk.parse_args(["--lrs", "1e-5", "--offline-lrs", "1e-3"]).offline_lrs == [1e-3]
    for bad in (["--lrs", "0"], ["--lrs", "1e-5", "--ablation"], ["--offline-lrs", "1e-3"],
                ["--lrs", "1e-5", "--offline-lrs", "-1"]):
        with pytest.raises(SystemExit):
            rk.parse_args(bad)
        assert "lrs" in capsys.readouterr().err


def test_tuned_lrs_come_from_the_sweep_file(tmp_path, capsys):
    sweep = tmp_path / "kk_lr_sweep.json"
    sweep.write_text(json.dumps({"chosen_lr": {"grpo": 3e-5, "rlad": 1e-4, "offline": 3e-4}}))
    args = rk.parse_args(["--tuned", str(sweep), "--methods", "grpo", "offline"])
    setting = rk.read_setting(args)
    assert setting.tuned_lr == {"grpo": 3e-5, "offline": 3e-4}
    out = rk.rl_overrides(rk.Run("grpo", 0), 10, 5, tmp_path, False, None,
                          setting.tuned_lr["grpo"])
    assert out[rk.LR_KEYS["rl"]] == 3e-5
    assert rk.sft_overrides(rk.Run("offline", 0), 10, 5, tmp_path, tmp_path, False,
                            3e-4)[rk.LR_KEYS["offline"]] == 3e-4
    assert rk.rl_overrides(rk.Run("grpo", 0, lr=1e-5), 10, 5, tmp_path, False, None,
                           3e-5)[rk.LR_KEYS["rl"]] == 1e-5  # a sweep run keeps its own lr
    with pytest.raises(SystemExit, match="no chosen lr for \\['kdrl'\\]"):
        rk.read_setting(rk.parse_args(["--tuned", str(sweep)]))
    with pytest.raises(SystemExit, match="not a sweep's results file"):
        rk.read_setting(rk.parse_args(["--tuned", str(tmp_path / "absent.json")]))
    with pytest.raises(SystemExit):
        rk.parse_args(["--tuned", str(sweep), "--lrs", "1e-5"])
    assert "--tuned" in capsys.readouterr().err


def test_step_cost_file_gives_each_rl_method_its_seconds_per_step(tmp_path, capsys):
    measured = tmp_path / "kk_step_cost.json"
    measured.write_text(json.dumps({"task": "logic", "command": "c", "methods": {
        m: {"step_s": s} for m, s in (("grpo", 10.0), ("kdrl", 15.0), ("rlad", 16.0))}}))
    cost = rk.read_step_cost(measured, "logic", ["grpo", "rlad", "offline"])
    assert cost["step_s"] == {"grpo": 10.0, "rlad": 16.0} and cost["command"] == "c"
    assert rk.read_step_cost(None, "logic", ["grpo"]) is None
    with pytest.raises(SystemExit, match="--step-cost .*not math"):
        rk.read_step_cost(measured, "math", ["grpo"])
    measured.write_text(json.dumps({"task": "logic", "command": "c",
                                    "methods": {"grpo": {"step_s": 1.0}}}))
    with pytest.raises(SystemExit, match="KeyError: 'kdrl'"):
        rk.read_step_cost(measured, "logic", ["grpo", "kdrl"])
    with pytest.raises(SystemExit):
        rk.parse_args(["--lrs", "1e-5", "--step-cost", str(measured)])
    assert "--step-cost" in capsys.readouterr().err


def test_math_suite_reads_its_own_configs():
    setting = rk.read_setting(rk.parse_args(["--task", "math"]))
    assert setting.suite.prefix == "math" and setting.levels == ["ops1", "ops2", "ops3"]
    assert rk.dotted_get(setting.rl, "model.init_args.student") == "tiny-math-student"
    assert rk.dotted_get(setting.offline, "model.init_args.model") == "tiny-math-student"
    assert all((REPO / c).is_file() for c in setting.suite.warm_start_configs)


def test_kept_students_are_bf16_copies_that_load_as_the_rounded_weights(tmp_path):
    import torch
    from safetensors import safe_open

    from rlad_pl.models import load_model

    run = rk.Run("rlad", 3)
    hf_model = tmp_path / "runs" / "rlad" / "seed3" / "hf_model"
    trained = load_model("tiny-kk-student")  # bf16 on disk, float32 in memory
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(1e-3)  # not representable in bf16 any more
    trained.save_pretrained(hf_model)
    kept = rk.keep_students([run], tmp_path / "runs", tmp_path / "students")
    assert kept[run] == tmp_path / "students" / "rlad" / "seed3"
    with safe_open(kept[run] / "model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    loaded = load_model(str(kept[run]))
    for (name, p), q in zip(trained.named_parameters(), loaded.parameters(), strict=True):
        assert torch.equal(p.to(torch.bfloat16).float(), q), name
    assert rk.keep_students([run], tmp_path / "runs", tmp_path / "students") == kept  # rerun


def test_repo_relative_paths_of_kept_students(tmp_path):
    assert rk.repo_relative(REPO / "benchmarks" / "results") == "benchmarks/results"
    assert rk.repo_relative(tmp_path) == str(tmp_path.resolve())


def test_test_results_carry_per_problem_outcomes_and_are_cached(tmp_path, monkeypatch):
    from rlad_pl.tasks import get_task

    task = get_task("knights_knaves")
    split = {"people3": task.generate(2, seed=5, subset="people3")}
    sampling = {"k": 2, "max_new_tokens": 8, "temperature": 0.6, "top_p": 0.95, "seed": 1}
    cache, key = tmp_path / "test_eval.json", {"split": "abc", "format": rk.RESULTS_FORMAT}
    result = rk.evaluate_cached("tiny-kk-student", cache, task, split, sampling, key)
    assert result["test"]["accuracy/people3"] == pytest.approx(
        sum(result["problems"]["people3"]["greedy_correct"]) / 2)
    assert len(result["problems"]["people3"]["sampled_correct"]) == 2
    monkeypatch.setattr(rk, "score_split", None)  # a second call must not generate
    assert rk.evaluate_cached("tiny-kk-student", cache, task, split, sampling, key) == result
