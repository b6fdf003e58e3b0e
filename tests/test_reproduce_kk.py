"""Helpers of benchmarks/reproduce_kk.py (no training): configs, curves, tables, test split."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from rlad_pl.module import METRICS
from rlad_pl.sft_data import SFTDataModule
from rlad_pl.tasks import get_task
from rlad_pl.tasks.knights_knaves.reward import ANSWER_UNPARSED

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("reproduce_kk", REPO / "benchmarks" /
                                              "reproduce_kk.py")
rk = sys.modules["reproduce_kk"] = importlib.util.module_from_spec(_spec)  # dataclasses need it
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
    args = rk.parse_args(["--set", "model.init_args.lr=5e-5", "--set", "data.init_args.seed=3"])
    assert args.rl_set == {"model.init_args.lr": 5e-5, "data.init_args.seed": 3}
    setting = rk.read_setting(args)
    assert all(rk.dotted_get(setting.configs[m], "model.init_args.lr") == 5e-5
               for m in rk.RL_METHODS)
    out = rk.rl_overrides(rk.Run("grpo", 1), 10, 5, Path("runs"), False, args.rl_set)
    assert out["model.init_args.lr"] == 5e-5
    assert out["data.init_args.seed"] == 1  # the run's own seed wins
    with pytest.raises(SystemExit):
        rk.parse_args(["--set", "lr"])
    assert "--set 'lr': expected KEY=VALUE" in capsys.readouterr().err


def test_budget_mismatches_name_the_differing_keys():
    a = {"model": {"init_args": {"lr": 1e-3, "group_size": 8}}}
    b = {"model": {"init_args": {"lr": 1e-3, "group_size": 4}}}
    c = {"model": {"init_args": {"group_size": 8}}}  # lr missing: counts as None
    keys = ["model.init_args.lr", "model.init_args.group_size"]
    assert rk.budget_mismatches({"a": a, "a2": a}, keys) == []
    lines = rk.budget_mismatches({"a": a, "b": b}, keys)
    assert len(lines) == 1 and lines[0].startswith("model.init_args.group_size")
    assert rk.budget_mismatches({"a": a, "c": c}, keys)[0].startswith("model.init_args.lr")


def test_shipped_rl_configs_share_one_budget():
    configs = {m: rk.load_config(REPO / rk.CONFIGS[m]) for m in rk.RL_METHODS}
    assert rk.budget_mismatches(configs, rk.BUDGET_KEYS) == []


def test_tags_read_are_documented_rl_metrics():
    for tag in (rk.REWARD_TAG, rk.ZERO_VARIANCE_TAG, rk.RL_VAL_TAG):
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


def test_curves_count_steps_done_and_seconds_since_start():
    # Lightning logs step i's scalars (and an in-loop validation after it) at i - 1.
    train = [(0, 105.0, -1.0), (1, 106.0, -0.5)]
    assert rk.training_curve(train, 100.0) == [(1, 5.0, -1.0), (2, 6.0, -0.5)]
    val = [(0, 104.0, 0.1), (0, 107.0, 0.2), (1, 108.0, 0.3)]  # pre-training pass, then steps
    assert rk.validation_curve(val, 100.0, 105.0) == [(0, 4.0, 0.1), (1, 7.0, 0.2),
                                                      (2, 8.0, 0.3)]
    assert rk.validation_curve([(99, 150.0, 0.4)], 100.0, None) == [(100, 50.0, 0.4)]


def test_value_at_time_is_the_latest_point_reached():
    points = [(0, 10.0, 0.1), (50, 20.0, 0.2), (100, 30.0, 0.3)]
    assert rk.value_at_time(points, 9.9) is None
    assert rk.value_at_time(points, 10.0) == (0, 10.0, 0.1)
    assert rk.value_at_time(points, 29.9) == (50, 20.0, 0.2)
    assert rk.value_at_time(points, 1e9) == (100, 30.0, 0.3)


def test_mean_curve_averages_common_steps():
    a = [(0, 1.0, 0.0), (1, 3.0, 1.0), (2, 5.0, 2.0)]
    b = [(0, 3.0, 1.0), (1, 5.0, 0.0)]
    assert rk.mean_curve([a, b]) == [(0, 2.0, 0.5), (1, 4.0, 0.5)]
    assert rk.mean_curve([]) == []


def test_mean_std_is_sample_std_over_seeds():
    assert rk.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert rk.mean_std([0.25]) == (0.25, 0.0)
    assert rk.fmt_mean_std([0.1, 0.3]) == f"0.200 ± {math.sqrt(0.02):.3f}"
    assert rk.fmt_mean_std([0.25, None]) == "0.250"
    assert rk.fmt_mean_std([]) == "-"


def test_markdown_table():
    assert rk.markdown_table(["a", "b"], [[1, "x"], [2, "y"]]) == (
        "| a | b |\n|---|---|\n| 1 | x |\n| 2 | y |")


def _score(correct: bool, malformed: bool = False) -> dict:
    answer = ANSWER_UNPARSED if malformed else (2.0 if correct else -1.5)
    return {"correct": correct, "answer": answer}


def test_level_metrics_accuracy_mean_pass_and_malformed():
    greedy = [[_score(True)], [_score(False, malformed=True)], [_score(False)], [_score(False)]]
    sampled = [[_score(True), _score(False), _score(True), _score(False)],
               [_score(False, True)] * 4,
               [_score(False)] * 3 + [_score(True)],
               [_score(False)] * 2 + [_score(False, True)] * 2]
    m = rk.level_metrics(greedy, sampled, k=4)
    assert m["n"] == 4
    assert m["greedy_accuracy"] == 0.25
    assert m["mean_at_k"] == pytest.approx(3 / 16)
    assert m["pass_at_k"] == pytest.approx(2 / 4)  # k = n: a puzzle passes if any sample is right
    assert m["greedy_malformed"] == 0.25
    assert m["sampled_malformed"] == pytest.approx(6 / 16)
    avg = rk.average_levels({"people3": m, "people4": {**m, "greedy_accuracy": 0.75}})
    assert avg["greedy_accuracy"] == 0.5 and "n" not in avg


def test_test_split_avoids_excluded_puzzles_and_prompts():
    task = get_task("knights_knaves", people=[3, 4])
    plain = {lv: task.generate(12, seed=999, subset=lv) for lv in task.subsets}
    excluded_records = plain["people3"][:3]  # e.g. RL training records
    excluded_prompts = [task.prompt(r) for r in plain["people4"][:2]]  # offline pairs
    split = rk.disjoint_test_split(task, task.subsets, 8, 999, excluded_records,
                                   excluded_prompts)
    assert [len(v) for v in split.values()] == [8, 8]
    keys = {r["statements"] for r in excluded_records}
    assert not any(r["statements"] in keys for r in split["people3"])
    assert not any(task.prompt(r) in excluded_prompts for r in split["people4"])
    assert [r["statements"] for r in split["people4"]] == \
        [r["statements"] for r in plain["people4"][2:10]]
    assert rk.split_fingerprint(split) == rk.split_fingerprint(
        rk.disjoint_test_split(task, task.subsets, 8, 999, excluded_records, excluded_prompts))


def test_sft_training_records_match_the_sft_datamodule():
    args = {"tokenizer": "tiny-kk-student", "levels": ["people3", "people4"],
            "train_per_level": 6, "val_per_level": 3, "test_per_level": 4, "seed": 5}
    dm = SFTDataModule(**args)
    dm.setup("fit")
    rebuilt = rk.sft_training_records(args)
    prompts = [dm.encode_pair(dm.task.prompt(r), "")[0] for r in rebuilt]
    assert prompts == [p for p, _ in dm.train_pairs]


def test_equal_time_rows_use_the_fastest_method_mean_run_time():
    results = [
        {"name": "a", "seconds": 10.0, "curves": {"val": [(0, 2.0, 0.1), (4, 9.0, 0.4)]}},
        {"name": "a", "seconds": 12.0, "curves": {"val": [(0, 2.0, 0.2), (4, 11.5, 0.6)]}},
        {"name": "b", "seconds": 30.0, "curves": {"val": [(0, 3.0, 0.3), (4, 25.0, 0.9)]}},
    ]
    t_star, rows = rk.equal_time_rows(results, {"a": "A", "b": "B"})
    assert t_star == 11.0
    assert rows[0] == ["A", "11", rk.fmt_mean_std([0.4, 0.2]), "4/0",
                       rk.fmt_mean_std([0.4, 0.6])]
    assert rows[1] == ["B", "30", "0.300", "0", "0.900"]
    t_star, rows = rk.equal_time_rows(results, {"a": "A", "b": "B"}, among=["b"])
    assert t_star == 30.0
    assert rows[0][2:4] == [rk.fmt_mean_std([0.4, 0.6]), "4/4"]


def test_read_scalars_from_tensorboard_events(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path))
    for step, value in [(0, 0.5), (1, 0.25)]:
        writer.add_scalar("train/reward/mean", value, step)
    writer.add_scalar("val/accuracy/mean", 0.1, 0)
    writer.close()
    scalars = rk.read_scalars(tmp_path, ["train/reward/mean", "val/accuracy/mean", "absent"])
    assert set(scalars) == {"train/reward/mean", "val/accuracy/mean"}
    assert [(s, v) for s, _, v in scalars["train/reward/mean"]] == [(0, 0.5), (1, 0.25)]
    assert all(w > 0 for _, w, _ in scalars["val/accuracy/mean"])
