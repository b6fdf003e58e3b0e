"""MathTask with real instruction models (chat template, boxed answers) and benchmark files."""


import pytest

from rlad_pl.tasks import get_task
from rlad_pl.tasks.math import warm_up
from rlad_pl.tasks.math.benchmarks import normalize_record

# A Qwen3-style chat template (written here): an empty think block when thinking is off.
QWEN3_STYLE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "{% endif %}{% endif %}")


@pytest.fixture(scope="module")
def tokenizer():
    from rlad_pl.models import load_tokenizer

    tok = load_tokenizer("tiny-math-student")
    tok.chat_template = QWEN3_STYLE
    return tok


@pytest.fixture(scope="module", autouse=True)
def _worker():
    assert warm_up()


@pytest.mark.parametrize("thinking, has_empty_think", [(False, True), (True, False),
                                                        (None, False)])
def test_chat_prompt_with_and_without_thinking(tokenizer, thinking, has_empty_think):
    task = get_task("math", template="chat", prefill="", answer_format="boxed",
                    enable_thinking=thinking)
    prompt = task.prompt({"question": "What is $1+1$?", "answer": "2"}, tokenizer=tokenizer)
    assert prompt.startswith("<|im_start|>user\nWhat is $1+1$?\n\nPlease reason step by step")
    assert "\\boxed{}" in prompt
    assert prompt.endswith("<|im_start|>assistant\n" + ("<think>\n\n</think>\n\n"
                                                          if has_empty_think else ""))


def test_boxed_reward():
    task = get_task("math", template="chat", prefill="", answer_format="boxed")
    record = {"question": "q", "answer": "\\frac{\\sqrt{3}}{2}"}
    good = task.score("<think>sin 60</think>\n\nSo it is $\\boxed{\\dfrac{1}{2}\\sqrt3}$.", record)
    assert good == {"format": 0.1, "answer": 1.0, "total": 1.1, "correct": True,
                    "verifier_timeouts": 0.0}
    wrong = task.score("The answer is $\\boxed{\\frac12}$", record)
    assert (wrong["answer"], wrong["format"]) == (0.0, 0.1)
    unboxed = task.score("The answer is $\\frac{\\sqrt3}{2}$.", record)
    assert (unboxed["answer"], unboxed["format"]) == (1.0, -0.1)


def test_bad_task_options_name_the_key():
    with pytest.raises(ValueError, match="answer_format.*'latex'.*tags, boxed"):
        get_task("math", answer_format="latex")
    with pytest.raises(ValueError, match="timeout"):
        get_task("math", timeout=0)
    with pytest.raises(ValueError, match="enable_thinking: False needs template: chat"):
        get_task("math", enable_thinking=False)


@pytest.mark.parametrize("raw, question, answer, subset", [
    # MATH-500: answer field, integer-free level
    ({"problem": "P", "solution": "... \\boxed{\\frac{1}{2}}", "answer": "\\frac{1}{2}",
      "subject": "Algebra", "level": 3, "unique_id": "test/algebra/1.json"},
     "P", "\\frac{1}{2}", "level3"),
    # MATH (Hendrycks): gold from the last \boxed of the solution
    ({"problem": "P", "solution": "so \\boxed{2} then \\boxed{\\sqrt{2}}", "level": "Level 5",
      "type": "Algebra"}, "P", "\\sqrt{2}", "level5"),
    # GSM8K
    ({"question": "Q", "answer": "48 / 2 = 24\n#### 72"}, "Q", "72", None),
    # AIME 2024 (capitalised fields, integer answer)
    ({"ID": "2024-I-1", "Problem": "P", "Solution": "...", "Answer": 204}, "P", "204", None),
    # AIME 2025 (string answer)
    ({"id": 0, "problem": "P", "answer": "70", "url": "u", "year": 2025}, "P", "70", None),
    # AMC (float answer)
    ({"id": 1, "problem": "P", "answer": 142.0, "url": "u"}, "P", "142", None),
])
def test_normalize_benchmark_records(raw, question, answer, subset):
    record = normalize_record(raw)
    assert (record["question"], record["answer"]) == (question, answer)
    assert record.get("subset") == subset
    assert get_task("math").normalize(raw) == record


