"""MathTask with real instruction models (chat template, boxed answers) and benchmark files."""

import json

import pytest

from rlad_pl.tasks import get_task
from rlad_pl.tasks.math import warm_up
from rlad_pl.tasks.math.benchmarks import load_benchmark, main, normalize_record, read_raw

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


def test_load_jsonl_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    math500 = [{"problem": "Half of 1?", "solution": "\\boxed{\\frac12}", "answer": "\\frac12",
                "level": 2},
               {"problem": "Root?", "solution": "\\boxed{\\sqrt2}", "answer": "\\sqrt{2}",
                "level": 4}]
    amc = [{"id": 1, "problem": "AMC 1", "answer": 142.0, "url": "u"},
           {"id": 2, "problem": "AMC 2", "answer": 7.0, "url": "u"}]
    expected = {"math500": [("Half of 1?", "\\frac12", "level2"), ("Root?", "\\sqrt{2}", "level4")],
                "amc": [("AMC 1", "142", "amc"), ("AMC 2", "7", "amc")]}
    for name, rows in (("math500", math500), ("amc", amc)):
        jsonl = tmp_path / f"{name}.jsonl"
        jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        parquet = tmp_path / f"{name}.parquet"
        pq.write_table(pa.Table.from_pylist(rows), parquet)
        subset = "amc" if name == "amc" else None
        for path in (jsonl, parquet):
            records = load_benchmark(path, subset=subset)
            assert [(r["question"], r["answer"], r["subset"]) for r in records] == expected[name]
        assert len(read_raw(parquet)) == 2
    out = tmp_path / "out" / "amc.jsonl"
    main([str(tmp_path / "amc.parquet"), str(out), "--subset", "amc"])
    converted = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["answer"] for r in converted] == ["142", "7"]
    # the converted file is what the DataModule's JSONL reader takes
    from rlad_pl.data.records import BadRecords, read_records

    pairs = read_records([out], get_task("math"), BadRecords("error"))
    assert [(r["answer"], r["subset"]) for r, _ in pairs] == [("142", "amc"), ("7", "amc")]


def test_bad_benchmark_files(tmp_path):
    with pytest.raises(ValueError, match="unsupported file type"):
        load_benchmark(tmp_path / "x.csv")
    with pytest.raises(FileNotFoundError):
        load_benchmark(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"problem": "no answer anywhere"}) + "\n")
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        load_benchmark(bad)
