"""Reporting helpers of benchmarks/reproduce.py (benchmarks/reproduce_report.py): curves, tables."""

import importlib.util
import math
import sys
from pathlib import Path

from rlad_pl.evaluation import summarize

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts import their sibling report module
_spec = importlib.util.spec_from_file_location("reproduce_report",
                                              REPO / "benchmarks" / "reproduce_report.py")
kr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kr)


def test_curves_keep_the_steps_done_and_count_seconds_since_start():
    events = [(0, 104.0, 0.1), (50, 107.0, 0.2), (100, 108.0, 0.3)]  # as the modules log them
    assert kr.curve(events, 100.0) == [(0, 4.0, 0.1), (50, 7.0, 0.2), (100, 8.0, 0.3)]


def test_value_at_time_is_the_latest_point_reached():
    points = [(0, 10.0, 0.1), (50, 20.0, 0.2), (100, 30.0, 0.3)]
    assert kr.value_at_time(points, 9.9) is None
    assert kr.value_at_time(points, 10.0) == (0, 10.0, 0.1)
    assert kr.value_at_time(points, 29.9) == (50, 20.0, 0.2)
    assert kr.value_at_time(points, 1e9) == (100, 30.0, 0.3)


def test_mean_curve_averages_common_steps():
    a = [(0, 1.0, 0.0), (1, 3.0, 1.0), (2, 5.0, 2.0)]
    b = [(0, 3.0, 1.0), (1, 5.0, 0.0)]
    assert kr.mean_curve([a, b]) == [(0, 2.0, 0.5), (1, 4.0, 0.5)]
    assert kr.mean_curve([]) == []


def test_mean_std_is_sample_std_over_seeds():
    assert kr.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert kr.mean_std([0.25]) == (0.25, 0.0)
    assert kr.fmt_mean_std([0.1, 0.3]) == f"0.200 ± {math.sqrt(0.02):.3f}"
    assert kr.fmt_mean_std([0.25, None]) == "0.250"
    assert kr.fmt_mean_std([]) == "-"


def test_markdown_table():
    assert kr.markdown_table(["a", "b"], [[1, "x"], [2, "y"]]) == (
        "| a | b |\n|---|---|\n| 1 | x |\n| 2 | y |")


def test_equal_time_rows_use_the_fastest_method_mean_run_time():
    results = [
        {"name": "a", "seconds": 10.0, "curves": {"val": [(0, 2.0, 0.1), (4, 9.0, 0.4)]}},
        {"name": "a", "seconds": 12.0, "curves": {"val": [(0, 2.0, 0.2), (4, 11.5, 0.6)]}},
        {"name": "b", "seconds": 30.0, "curves": {"val": [(0, 3.0, 0.3), (4, 25.0, 0.9)]}},
    ]
    t_star, rows = kr.equal_time_rows(results, {"a": "A", "b": "B"})
    assert t_star == 11.0
    assert rows[0] == ["A", "11", kr.fmt_mean_std([0.4, 0.2]), "4/0",
                       kr.fmt_mean_std([0.4, 0.6])]
    assert rows[1] == ["B", "30", "0.300", "0", "0.900"]
    t_star, rows = kr.equal_time_rows(results, {"a": "A", "b": "B"}, among=["b"])
    assert t_star == 30.0
    assert rows[0][2:4] == [kr.fmt_mean_std([0.4, 0.6]), "4/4"]


def test_equal_time_rows_put_methods_with_a_step_cost_on_one_clock():
    # b's own clock says it was slow (trained under load); per step it costs 2x a's.
    results = [
        {"name": "a", "seconds": 10.0, "curves": {"val": [(0, 1.0, 0.1), (2, 5.0, 0.3),
                                                          (4, 10.0, 0.5)]}},
        {"name": "b", "seconds": 90.0, "curves": {"val": [(0, 1.0, 0.2), (2, 50.0, 0.6),
                                                          (4, 90.0, 0.8)]}},
        {"name": "c", "seconds": 3.0, "curves": {"val": [(4, 3.0, 0.7)]}},
    ]
    labels = {"a": "A", "b": "B", "c": "C"}
    t_star, rows = kr.equal_time_rows(results, labels, ["a", "b"], {"a": 1.0, "b": 2.0})
    assert t_star == 4.0  # a's 4 steps x 1 s
    assert rows[0][1:4] == ["4", "0.500", "4"]
    assert rows[1][1:4] == ["8", "0.600", "2"]  # b reached step 2 (2 x 2 s) by then
    assert rows[2][1:4] == ["3", "0.700", "4"]  # c keeps its own clock
    t_star, rows = kr.equal_time_rows(results, labels, ["a", "b"])
    assert t_star == 10.0 and rows[1][3] == "0"  # own clocks: b had done no step by 10 s


def test_read_scalars_from_tensorboard_events(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path))
    for step, value in [(0, 0.5), (1, 0.25)]:
        writer.add_scalar("train/reward/mean", value, step)
    writer.add_scalar("val/accuracy/mean", 0.1, 0)
    writer.close()
    scalars = kr.read_scalars(tmp_path, ["train/reward/mean", "val/accuracy/mean", "absent"])
    assert set(scalars) == {"train/reward/mean", "val/accuracy/mean"}
    assert [(s, v) for s, _, v in scalars["train/reward/mean"]] == [(0, 0.5), (1, 0.25)]
    assert all(w > 0 for _, w, _ in scalars["val/accuracy/mean"])



def test_report_tables_read_the_evaluation_tags(tmp_path):
    def test(acc3, acc4):
        per_level = {lv: {"accuracy": a, "malformed": 0.1, "mean@4": a / 2, "pass@4": a,
                          "malformed@4": 0.2} for lv, a in (("people3", acc3), ("people4", acc4))}
        return summarize(per_level)

    results = [{"name": "rlad", "seed": 0, "test": test(0.5, 0.25), "variance_share": 0.5,
                "seconds": 10.0, "curves": {"val": [(0, 1.0, 0.2), (2, 9.0, 0.3)]}},
               {"name": "grpo", "seed": 0, "test": test(0.25, 0.25), "variance_share": 0.25,
                "seconds": 12.0, "curves": {"val": [(0, 1.0, 0.2)]}}]
    problems = {"people3": {"greedy_correct": [1, 1, 0]}, "people4": {"greedy_correct": [0, 1]}}
    baseline = {"people3": {"greedy_correct": [0, 1, 0]}, "people4": {"greedy_correct": [1, 0]}}
    results[0]["problems"], results[1]["problems"] = problems, baseline
    path = tmp_path / "kk_table.md"
    kr.write_report(path, ["# title"], results, {"grpo": "GRPO", "rlad": "RLAD"},
                    {"rlad": 0.5}, 0, ["people3", "people4"], 4,
                    {"test": test(0.1, 0.0), "problems": baseline},
                    {"test": test(0.9, 0.8), "problems": problems}, "tiny-teacher")
    text = path.read_text()
    assert "| RLAD | 1 | 0.500 | 0.250 | 0.375 |" in text  # greedy accuracy per level and Avg
    assert "| Warm start (the student before training) | 1 | 0.100 | 0.000 | 0.050 |" in text
    assert "| Teacher (tiny-teacher) | 1 | 0.900 | 0.800 | 0.850 |" in text
    # RLAD - GRPO: greedy Avg .375 - .25, mean@4 .1875 - .125; problems 2 only RLAD, 1 only GRPO
    assert "| GRPO | 1 | 0.125 | 1/1 | 1.000 | 0.062 | 1/1 | 1.000 | 2 / 1 | 1 |" in text
    assert "| Warm start | 1 | 0.325 | 1/1 | 1.000 | 0.163 | 1/1 | 1.000 | 2 / 1 | 1 |" in text
    assert "| RLAD | 1 | 0.250 | 0.125 | 0.188 |" in text  # mean@4
    assert "| GRPO | 0.100 | 0.200 | 0.250 |" in text  # malformed greedy, sampled, variance
    assert "| 0.5 | 0.375 | 0.188 | 0.375 | 0.100 | 0.500 |" in text  # alpha ablation row
    assert "not comparable this way" in text  # no --step-cost: each run's own clock
    kr.write_report(path, ["# title"], results, {"grpo": "GRPO", "rlad": "RLAD"}, {}, 0,
                    ["people3", "people4"], 4, {"test": test(0.1, 0.0), "problems": baseline},
                    step_cost={"source": "kk_step_cost.json", "step_s": {"grpo": 1.0,
                                                                         "rlad": 4.5}})
    text = path.read_text()
    assert "(kk_step_cost.json: GRPO 1.00 s, RLAD 4.50 s)" in text
    assert "| RLAD | 9 | 0.200 | 0 | 0.300 |" in text  # at GRPO's end (0 steps x 1 s) ...


def test_quarter_means_split_a_curve_in_order():
    points = [(s, 0.0, float(s)) for s in range(1, 9)]  # values 1..8
    assert kr.quarter_means(points) == [1.5, 3.5, 5.5, 7.5]
    assert kr.quarter_means(points[:2]) == [1.0, 2.0]


def sweep_run(method, lr, seed, val, reward=(0.1, 0.2, 0.3, 0.4)):
    return {"method": method, "lr": lr, "seed": seed, "seconds": 100.0,
            "curves": {"reward": [(i + 1, 0.0, r) for i, r in enumerate(reward)],
                       "val": [(s, 0.0, v) for s, v in val],
                       "val_sampled": [(s, 0.0, v / 2) for s, v in val]}}


def test_sweep_selects_on_validation_after_step_zero_mean_over_seeds(tmp_path):
    results = [
        # step 0 is the same model for every lr: it must not count
        sweep_run("grpo", 1e-4, 0, [(0, 0.9), (50, 0.2), (100, 0.2)]),
        sweep_run("grpo", 3e-5, 0, [(0, 0.1), (50, 0.3), (100, 0.3)]),
        sweep_run("grpo", 3e-5, 1, [(0, 0.1), (50, 0.1), (100, 0.1)]),  # mean .2 over seeds
        sweep_run("offline", 3e-4, 0, [(50, 0.4), (100, 0.5)], reward=()),
        sweep_run("offline", 1e-3, 0, [(50, 0.5), (100, 0.3)], reward=()),
    ]
    assert kr.sweep_score(results[0]) == 0.2
    assert kr.chosen_lrs(results) == {"grpo": 1e-4, "offline": 3e-4}
    results[2] = sweep_run("grpo", 3e-5, 1, [(0, 0.1), (50, 0.3), (100, 0.3)])
    assert kr.chosen_lrs(results) == {"grpo": 3e-5, "offline": 3e-4}
    path = tmp_path / "kk_lr_sweep.md"
    chosen = kr.write_sweep_report(path, ["# sweep"], results,
                                   {"grpo": "GRPO", "offline": "Offline"}, 4)
    assert chosen == {"grpo": 3e-5, "offline": 3e-4}
    text = path.read_text()
    assert ("| GRPO | 3e-05 | 2 | 0.100 / 0.200 / 0.300 / 0.400 | 0.100 (0) -> 0.300 (50) -> "
            "0.300 (100) | 0.050 (0) -> 0.150 (50) -> 0.150 (100) | 0.300 ± 0.000 | 100 | "
            "**chosen** |") in text
    assert "| GRPO | 0.0001 | 1 |" in text and "| Offline | 0.001 | 1 | - |" in text
    kr.plot_sweep(tmp_path / "kk_lr_sweep.png", results, {"grpo": "GRPO", "offline": "Offline"})
    assert (tmp_path / "kk_lr_sweep.png").stat().st_size > 0


def test_moving_average_is_trailing():
    assert kr.moving_average([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]


def test_sign_flip_p_is_exact_over_the_sign_patterns():
    assert kr.sign_flip_p([0.1, 0.2, 0.3]) == 2 / 8  # all positive: only +++ and --- reach it
    assert kr.sign_flip_p([0.1, 0.2, 0.3, 0.4]) == 2 / 16
    assert kr.sign_flip_p([0.1, -0.1]) == 1.0
    assert kr.sign_flip_p([0.3, 0.1, -0.1]) == 6 / 8  # sums .5, .3, .3 and their negatives reach .3


def test_mcnemar_p_is_the_exact_binomial_two_sided_p():
    assert kr.mcnemar_p(0, 0) == 1.0
    assert kr.mcnemar_p(10, 0) == kr.mcnemar_p(0, 10) == 2 / 2 ** 10
    assert math.isclose(kr.mcnemar_p(7, 3), 2 * (1 + 10 + 45 + 120) / 2 ** 10)
    assert kr.mcnemar_p(5, 5) == 1.0


def test_discordant_counts_problems_one_model_alone_solves():
    a = {"x": {"greedy_correct": [1, 1, 0, 0]}, "y": {"greedy_correct": [1]}}
    b = {"x": {"greedy_correct": [1, 0, 1, 0]}, "y": {"greedy_correct": [0]}}
    assert kr.discordant(a, b) == (2, 1)
