"""Benchmark files in JSONL and Parquet: one reader (`rlad_pl.data.records.read_rows`) used by
`load_benchmark` and the DataModule; both formats give the same records with the gold answer as
each benchmark stores it; bad files and missing columns are one-line errors."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlad_pl.data import BadRecords, DataFileError, PromptDataModule, read_records
from rlad_pl.errors import ConfigError
from rlad_pl.tasks import get_task
from rlad_pl.tasks.math.benchmarks import load_benchmark, main

# The schemas of the public copies (values made up): gold answers and subsets they give.
BENCHMARKS = {
    "math500": ([{"problem": "Half of 1?", "solution": "It is \\boxed{\\frac12}.",
                  "answer": "\\frac12", "subject": "Algebra", "level": 2,
                  "unique_id": "test/algebra/1.json"},
                 {"problem": "Root of 2?", "solution": "\\boxed{\\sqrt{2}}", "answer": "\\sqrt{2}",
                  "subject": "Algebra", "level": 4, "unique_id": "test/algebra/2.json"}],
                [("Half of 1?", "\\frac12", "level2"), ("Root of 2?", "\\sqrt{2}", "level4")]),
    "aime2024": ([{"ID": "2024-I-1", "Problem": "AIME 1", "Solution": "...", "Answer": 204},
                  {"ID": "2024-I-2", "Problem": "AIME 2", "Solution": "...", "Answer": 25}],
                 [("AIME 1", "204", "all"), ("AIME 2", "25", "all")]),
    "gsm8k": ([{"question": "Cups?", "answer": "48 / 2 = <<48/2=24>>24\n#### 72"},
               {"question": "Cost?", "answer": "5 * 2 = 10\n#### 1,000"}],
              [("Cups?", "72", "all"), ("Cost?", "1,000", "all")]),
    "amc": ([{"id": 0, "problem": "AMC 1", "answer": 142.0, "url": "u"},
             {"id": 1, "problem": "AMC 2", "answer": 7.5, "url": "u"}],
            [("AMC 1", "142", "all"), ("AMC 2", "7.5", "all")]),
}


def write_both(tmp_path, name, rows):
    jsonl, parquet = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.parquet"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    return jsonl, parquet


def summary(records):
    return [(r["question"], r["answer"], get_task("math").subset(r)) for r in records]


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_jsonl_and_parquet_give_the_same_records(tmp_path, name):
    rows, expected = BENCHMARKS[name]
    jsonl, parquet = write_both(tmp_path, name, rows)
    from_jsonl, from_parquet = load_benchmark(jsonl), load_benchmark(parquet)
    assert summary(from_jsonl) == expected
    assert from_parquet == from_jsonl
    task = get_task("math")
    pairs = read_records([jsonl, parquet], task, BadRecords("error"))
    assert [r for r, _ in pairs] == from_jsonl + from_parquet
    assert [s for _, s in pairs] == [f"{jsonl}:1", f"{jsonl}:2", f"{parquet}:row 1",
                                     f"{parquet}:row 2"]
    assert {r["subset"] for r in load_benchmark(parquet, subset=name)} == {name}


def test_convert_parquet_then_the_datamodule_reads_both(tmp_path):
    (tmp_path / "raw").mkdir()
    parquet = tmp_path / "raw" / "amc.parquet"
    pq.write_table(pa.Table.from_pylist(BENCHMARKS["amc"][0]), parquet)
    main([str(parquet), str(tmp_path / "test" / "amc.jsonl"), "--subset", "amc"])
    pq.write_table(pa.Table.from_pylist(BENCHMARKS["aime2024"][0]),
                   tmp_path / "test" / "aime.parquet")
    dm = PromptDataModule(task="math", tokenizer="tiny-math-student",
                          train_files=str(tmp_path / "raw"), test_files=str(tmp_path / "test"),
                          on_bad_record="error")
    dm.setup("fit")
    assert [r["answer"] for r, _ in dm.splits["train"]] == ["142", "7.5"]
    assert sorted(r["answer"] for r, _ in dm.splits["test"]) == ["142", "204", "25", "7.5"]
    assert {dm.task.subset(r) for r, _ in dm.splits["test"]} == {"amc", "all"}


def test_bad_files_and_missing_columns_are_one_line_errors(tmp_path):
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not a parquet file")
    wrong = tmp_path / "wrong.parquet"  # a benchmark without any answer column
    pq.write_table(pa.Table.from_pylist([{"problem": "P", "id": 1}]), wrong)
    csv = tmp_path / "math.csv"
    csv.write_text("problem,answer\nP,1\n")
    cases = [(broken, "broken.parquet: not a readable Parquet file"),
             (wrong, "wrong.parquet: no row has the field 'answer' that task 'math' needs "
                     "(fields: id, problem, question)"),
             (csv, "math.csv: unsupported file type '.csv'; allowed: .jsonl, .parquet")]
    for path, message in cases:
        with pytest.raises(DataFileError, match=message.replace(".", r"\.").replace("(", r"\(")
                           .replace(")", r"\)")):
            load_benchmark(path)
        dm = PromptDataModule(task="math", tokenizer="tiny-math-student", train_files=str(path))
        with pytest.raises(ConfigError) as err:
            dm.setup("fit")
        text = str(err.value)
        assert text.startswith(f"data.init_args.train_files={str(path)!r}: ") and message in text
        assert "\n" not in text
    with pytest.raises(SystemExit) as done:
        main([str(wrong), str(tmp_path / "out.jsonl")])
    assert done.value.code == 2
    bad_row = tmp_path / "bad.jsonl"
    bad_row.write_text(json.dumps({"problem": "P", "answer": "1"}) + "\n"
                       + json.dumps({"problem": "no answer anywhere"}) + "\n")
    with pytest.raises(ValueError, match="bad.jsonl:2: missing field"):
        load_benchmark(bad_row)
