"""benchmarks/step_cost.py: the side-by-side summary (no training)."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import step_cost  # noqa: E402


def test_ratios_are_taken_within_each_round():
    # round 1 ran under twice the load: absolute seconds move, the within-round ratio does not
    rounds = [{"grpo": {"step_s": 10.0}, "rlad": {"step_s": 15.0}},
              {"grpo": {"step_s": 20.0}, "rlad": {"step_s": 30.0}},
              {"grpo": {"step_s": 11.0}, "rlad": {"step_s": 16.5}}]
    out = step_cost.summarize(rounds, ["grpo", "rlad"])
    assert out["rlad"]["ratio_to_grpo"] == pytest.approx(1.5)
    assert out["grpo"]["ratio_to_grpo"] == 1.0
    assert (out["rlad"]["step_s"], out["rlad"]["min_s"], out["rlad"]["max_s"]) == (16.5, 15.0, 30.0)
    assert "ratio_to_grpo" not in step_cost.summarize(rounds, ["rlad"])["rlad"]


def test_bad_arguments_stop_before_training(capsys):
    with pytest.raises(SystemExit):
        step_cost.main(["--steps", "1"])
    assert "--steps 1" in capsys.readouterr().err
