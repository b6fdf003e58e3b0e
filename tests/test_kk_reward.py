"""The Logic-RL reward: a table of edge cases."""

import time

import pytest

from rlad_pl.tasks import get_task
from rlad_pl.tasks.knights_knaves import score

RECORD = {"names": ["Liam", "William", "Ella", "Isabella"], "solution": [True, False, True, False]}
RIGHT = "Liam is a knight, William is a knave, Ella is a knight, and Isabella is a knave."
NUMBERED = ("(1) Liam is a knight\n(2) William is a knave\n(3) Ella is a knight\n"
            "(4) Isabella is a knave")
ONE_WRONG = "Liam is a knight, William is a knight, Ella is a knight, and Isabella is a knave."


def turn(answer, think=" reasoning "):
    return f"<think>{think}</think>\n<answer>{answer}</answer>"


CASES = [
    ("correct", turn(RIGHT), 1, 2),
    ("correct, numbered", turn(NUMBERED), 1, 2),
    ("correct, mixed case", turn("LIAM IS A KNIGHT; william is a Knave; ElLa Is A kNiGhT; "
                                 "isabella is a KNAVE"), 1, 2),
    ("line break between words", turn("Liam is\na knight, William\tis a  knave, Ella is a\n"
                                      "knight, Isabella is a knave"), 1, 2),
    ("names in another order", turn("Isabella is a knave. Ella is a knight. William is a knave. "
                                    "Liam is a knight."), 1, 2),
    ("substring name only inside the longer one",
     turn("William is a knight, William is a knave, Ella is a knight, Isabella is a knave"), 1, -2),
    ("Ella only inside Isabella",
     turn("Liam is a knight, William is a knave, Isabella is a knight, Isabella is a knave"), 1, -2),
    ("one role wrong", turn(ONE_WRONG), 1, -1.5),
    ("all roles wrong", turn("Liam is a knave, William is a knight, Ella is a knave, "
                             "Isabella is a knight"), 1, -1.5),
    ("extra role word", turn(RIGHT + " So there are two knights."), 1, -2),
    ("missing role word", turn("Liam is a knight, William is a knave, Ella is a knight"), 1, -2),
    ("name missing", turn("Liam is a knight, William is a knave, Ella is a knight, "
                          "Bella is a knave"), 1, -2),
    ("empty answer", turn(""), 1, -2),
    ("answer only in think", turn("see above", think=RIGHT), 1, -2),
    ("missing <think>", f"reasoning</think><answer>{RIGHT}</answer>", -1, -2),
    ("missing </think>", f"<think>reasoning<answer>{RIGHT}</answer>", -1, -2),
    ("missing answer tags", f"<think>reasoning</think>{RIGHT}", -1, -2),
    ("answer tags twice", turn(RIGHT) + f"<answer>{RIGHT}</answer>", -1, -2),
    ("think tags twice", "<think>a</think><think>b</think>" + f"<answer>{RIGHT}</answer>", -1, -2),
    ("<think> written again", "<think>" + turn(RIGHT), -1, -2),
    ("wrong order", f"<answer>{RIGHT}</answer><think>x</think>", -1, -2),
    ("truncated output", turn(RIGHT)[:-12], -1, -2),
    ("empty string", "", -1, -2),
    ("1 MB of text in think", turn(RIGHT, think="blah " * 200_000), 1, 2),
    ("1 MB of role words", turn("knight " * 150_000), 1, -2),
    ("1 MB without tags", "Liam is a knight " * 60_000, -1, -2),
]


@pytest.mark.parametrize("text, fmt, answer", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_reward_table(text, fmt, answer):
    start = time.perf_counter()
    s = score(text, RECORD)
    assert time.perf_counter() - start < 1.0
    assert (s["format"], s["answer"], s["total"]) == (fmt, answer, fmt + answer)
    assert s["correct"] == (answer == 2)
    assert set(s) == {"format", "answer", "total", "correct"}


def test_totals_are_the_logic_rl_values():
    assert {c[2] + c[3] for c in CASES} == {3, -0.5, -1, -3}


def test_task_prepends_the_prefill():
    task = get_task("knights_knaves")
    completion = f" reasoning </think> <answer> {RIGHT} </answer>"
    assert task.score(completion, RECORD)["total"] == 3
    assert task.score("<think>" + completion, RECORD)["total"] == -3  # <think> written again
    assert task.score("", RECORD)["total"] == -3
