"""Math task: extraction, the bounded verifier, synthetic problems, loader, reward."""

import json
import multiprocessing as mp
import sys
import time

import pytest

from rlad_pl.tasks import get_task
from rlad_pl.tasks.math import extract_answer, generate_problems, verify
from rlad_pl.tasks.math.benchmarks import load_benchmark


@pytest.mark.parametrize("text, expected", [
    ("so \\boxed{\\frac{1}{2}} done", "\\frac{1}{2}"),
    ("\\boxed{a{b{c}}d} and \\boxed{7}", "7"),
    ("\\boxed{\\frac{\\sqrt{2}}{2}}", "\\frac{\\sqrt{2}}{2}"),
    ("Natalia sold 48 ... #### 72", "72"),
    ("<think>3</think><answer> 42 </answer>", "42"),
    ("<answer>so \\boxed{5}</answer>", "5"),
    ("we get 3 then 1,234.", "1,234"),
    ("no numbers", None),
    ("", None),
    ("\\boxed{unclosed", None),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("pred, gold, expected", [
    ("\\boxed{\\frac{1}{2}}", "0.5", True),
    ("\\boxed{\\dfrac{6}{4}}", "\\boxed{\\frac{3}{2}}", True),
    ("\\frac12", "1/2", True),
    ("The answer is 1,234.", "1234", True),
    ("#### 72", "Natalia sold 48 clips ... #### 72", True),
    ("x = 5", "5", True),
    ("50%", "50", True),
    ("\\$1{,}000", "1000", True),
    ("2^10", "1024", True),
    ("2^{-3}", "0.125", True),
    ("3 \\cdot 4 - (2)", "10", True),
    ("-(-(-3))", "-3", True),
    ("(1,2)", "(1, 2)", True),
    ("\\text{blue}", "blue", True),
    ("４２", "42", True),  # fullwidth digits are digits
    ("\u22123", "-3", True),  # unicode minus sign
    ("3 \u00d7 4", "12", True),
    ("2\u00b2", "22", False),  # a superscript is not a digit
    ("\U0001d7cf", "1", False),  # mathematical bold digit: not ASCII
    ("7", 7, True),
    ("6", "7", False),
    ("1/0", "0", False),
    ("0^-1", "0", False),
    ("٤٢", "42", False),  # Arabic-Indic digits are not ASCII digits
    ("", "1", False),
    ("5", "", False),
    (None, "1", False),
])
def test_verify(pred, gold, expected):
    assert verify(pred, gold) is expected


ADVERSARIAL = [
    "9**9**9**9", "10^10^10", "2^2^2^2^2^2^2^2", "9^999999999", "(10^64)^64^64",
    "__import__('os').system('id')", "exec('import os')", "eval('1+1')", "().__class__.__base__",
    "open('/etc/passwd').read()", "lambda: 1", "1" * 1_000_000, "9" * 5000 + "^9",
    "(" * 100_000 + "1" + ")" * 100_000, "{" * 100_000, "\\frac{" * 50_000, "-" * 200_000 + "1",
    "\\boxed{" * 100_000 + "1", "\\boxed{" + "9" * 1_000_000 + "}", "#### " + "8" * 1_000_000,
    "<answer>" * 50_000 + "</answer>", "1e999999999", "1" + "0" * 100_000 + "/3",
    "\uff19\uff0a\uff0a\uff19\uff0a\uff0a\uff19", "\u0661\u0662", "\U0001d7cf\U0001d7ce",
    "1\u200b2", "\ufeff1", "\x00", "\\frac{1}{0}", "0^0", "0.0000000000000000001^64",
    "a" * 1_000_000, " " * 1_000_000 + "1",
]


def _run_adversarial(queue):
    events = []
    watched = ("exec", "compile", "os.system", "subprocess.Popen", "os.exec", "os.posix_spawn",
               "os.fork", "open")

    def hook(event, args):
        if event in watched:
            events.append(event)

    times = []
    sys.addaudithook(hook)
    for text in ADVERSARIAL:
        start = time.perf_counter()
        result = verify(text, "1")
        times.append((time.perf_counter() - start, type(result).__name__))
    queue.put((times, sorted(set(events))))


def test_verify_adversarial_bounded_and_inert():
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run_adversarial, args=(queue,))
    proc.start()
    times, events = queue.get(timeout=60)  # a hang fails here instead of blocking the suite
    proc.join(10)
    assert events == []  # nothing compiled, executed, spawned or opened
    assert [kind for _, kind in times] == ["bool"] * len(ADVERSARIAL)
    slow = [(text[:20], round(t, 3))
            for text, (t, _) in zip(ADVERSARIAL, times, strict=True) if t >= 1.0]
    assert not slow


@pytest.mark.parametrize("pred, evaluated", [
    ("eval('1+1')", "2"), ("2**3**2", "512"), ("10^10^10", "1" + "0" * 10), ("9" * 900, "9" * 900),
    ("__import__('os').getpid()", "0"), ("(" * 20 + "1" + ")" * 20, "1"),
])
def test_verify_does_not_evaluate_what_it_rejects(pred, evaluated):
    assert verify(pred, evaluated) is False


def test_synthetic_problems():
    records = generate_problems(300, seed=1)
    assert records == generate_problems(300, seed=1)
    assert len({r["question"] for r in records}) == 300
    assert {r["subset"] for r in records} == {"ops1", "ops2", "ops3"}
    for r in records:
        final = r["solution"].split(" , ")[-1].split(" = ")[-1]
        assert final == r["answer"] and verify(f"\\boxed{{{final}}}", r["answer"])
        assert len(r["solution"].split(" , ")) == int(r["subset"][3:])
    excluded = generate_problems(50, seed=2, exclude=records)
    assert not {r["question"] for r in excluded} & {r["question"] for r in records}


def test_math_task_reward_and_prompt():
    task = get_task("math")
    record = {"question": "3 + 4 = ?", "answer": "7", "subset": "ops1"}
    assert task.prompt(record) == "3 + 4 = ? <think>"
    good = task.score(" 3 + 4 = 7 </think> <answer> 7 </answer>", record)
    assert good == {"format": 0.1, "answer": 1.0, "total": 1.1, "correct": True,
                    "verifier_timeouts": 0.0}
    assert task.score(" </think> <answer> 8 </answer>", record)["total"] == pytest.approx(0.1)
    assert task.score(" 3 + 4 = 7 . 7", record)["total"] == pytest.approx(-0.1)
    assert task.score("<think> </think> <answer> 7 </answer>", record)["correct"] is False
    assert task.subset(record) == "ops1"


def test_load_benchmark_gsm8k_and_math_jsonl(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [{"question": "How many?", "answer": "2 + 2 = 4\n#### 4"},
             {"problem": "Half?", "solution": "It is \\boxed{\\frac{1}{2}}.", "level": "Level 2"}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    a, b = load_benchmark(str(path))
    assert (a["question"], a["answer"]) == ("How many?", "4")
    assert (b["question"], b["answer"], b["subset"]) == ("Half?", "\\frac{1}{2}", "level2")
    path.write_text(json.dumps(lines[0]) + "\n" + json.dumps({"question": "no answer"}) + "\n")
    with pytest.raises(ValueError, match="mixed.jsonl:2"):
        load_benchmark(str(path))
