"""SFT targets rendered by the tasks (`Task.sft_target`) earn the full reward."""

import pytest

from rlad_pl.tasks import get_task
from rlad_pl.tasks.knights_knaves import generate_puzzles
from rlad_pl.tasks.knights_knaves.targets import FORMATS, kk_target


@pytest.mark.parametrize("fmt", FORMATS)
def test_targets_earn_the_full_reward(fmt):
    task = get_task("knights_knaves")
    for n in (2, 3, 4, 5, 6):
        for record in generate_puzzles(n, 30, seed=n):
            result = task.score(kk_target(record, fmt), record)
            assert result["correct"] and result["total"] == 3.0


def test_task_method_renders_the_same_targets():
    kk, math = get_task("knights_knaves"), get_task("math")
    assert kk.sft_formats == FORMATS and math.sft_formats == ("steps", "answer")
    record = generate_puzzles(3, 1, seed=4)[0]
    for fmt in FORMATS:
        assert kk.sft_target(record, fmt) == kk_target(record, fmt)
    problem = math.generate(1, seed=3)[0]
    target = math.sft_target(problem, "steps")
    assert target.endswith(f"</think> <answer> {problem['answer']} </answer>")
    assert math.score(target, problem)["correct"]
    with pytest.raises(ValueError, match="unknown K&K target format 'prose'"):
        kk.sft_target(record, "prose")
