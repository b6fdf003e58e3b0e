"""Math benchmark files: MATH / MATH-500, AIME 2024 / 2025, AMC, GSM8K, read from local files.

Formats: JSONL (line by line) and Parquet (through the `datasets` library's local loader;
nothing is downloaded), read by `rlad_pl.data.records.read_rows`, the reader the DataModule
uses too. Field names as the public copies store them (case-insensitive):

- MATH / MATH-500: `problem`, `solution` (gold = its last `\\boxed{}` unless an `answer` field
  is present, as in MATH-500), `level` ("Level 3" or 3) -> subset `level3`;
- GSM8K: `question`, `answer` ("... #### 72" -> gold "72"; the whole text kept as `solution`);
- AIME 2024 / 2025, AMC: `problem` / `Problem` / `question`, `answer` / `Answer` as an integer,
  a float (AMC stores 142.0) or a string -> gold "142".

`normalize_record` maps one raw record to `question` / `answer` / `subset` (+ the raw fields);
`load_benchmark(path)` returns the normalised records of a file. The DataModule reads such
files directly; to give every record of a file one subset name (one accuracy per benchmark),
convert it with
`python -m rlad_pl.tasks.math.benchmarks math500.parquet data/math500.jsonl --subset math500`.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from .extract import after_hashes, last_boxed

_LEVEL = re.compile(r"(\d+)")
_QUESTION_KEYS = ("question", "problem")


def _get(record: dict, names: tuple[str, ...]):
    lowered = {str(k).lower(): k for k in record}
    for name in names:
        if name in lowered:
            return record[lowered[name]]
    return None


def _answer_text(value) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        text = value.strip()
        if "####" in text:
            return after_hashes(text)
        if "\\boxed" in text or "\\fbox" in text:
            return last_boxed(text) or text
        return text or None
    return None


def normalize_record(record: dict, subset: str | None = None) -> dict:
    """Canonical `question`, `answer` (gold final answer as text) and `subset` of a raw
    benchmark record; other fields are kept. Missing pieces are left out (validation then
    rejects the record)."""
    out = dict(record)
    question = _get(record, _QUESTION_KEYS)
    if question is not None:
        out["question"] = question
    raw_answer = _get(record, ("answer",))
    answer = _answer_text(raw_answer)
    if answer is None:
        solution = _get(record, ("solution",))
        if isinstance(solution, str):
            answer = last_boxed(solution)
    if answer is not None:
        out["answer"] = answer
    if isinstance(raw_answer, str) and "####" in raw_answer:
        out.setdefault("solution", raw_answer)
    if subset is not None:
        out["subset"] = subset
    elif "subset" not in record:
        level = _get(record, ("level",))
        if isinstance(level, bool):
            level = None
        if isinstance(level, int):
            out["subset"] = f"level{level}"
        elif isinstance(level, str):
            m = _LEVEL.search(level)
            out["subset"] = f"level{m.group(1)}" if m else "all"
    return out


def load_benchmark(path: str | Path, *, subset: str | None = None, task=None) -> list[dict]:
    """Normalised, validated records of a local JSONL or Parquet benchmark file (read by
    `rlad_pl.data.records.read_rows`, the DataModule's reader); `subset` replaces every record's
    subset. A bad row raises ValueError naming its source (file:line or file:row N); a file
    that cannot be read or lacks a needed column raises `DataFileError`."""
    from ...data.records import normalized_rows
    from .task import MathTask

    task = task or MathTask()
    records = []
    for source, record in normalized_rows(path, task):
        try:
            if isinstance(record, str):
                raise ValueError(record)
            task.validate(record)
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{source}: {err}") from None
        records.append(record if subset is None else {**record, "subset": subset})
    return records


def write_jsonl(records: list[dict], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Normalise a math benchmark file to JSONL "
                                                 "(question / answer / subset).")
    parser.add_argument("source", help="local .jsonl or .parquet file")
    parser.add_argument("target", help="output .jsonl")
    parser.add_argument("--subset", default=None, help="subset name for every record "
                                                       "(default: from `level`, else 'all')")
    args = parser.parse_args(argv)
    try:
        records = load_benchmark(args.source, subset=args.subset)
    except (ValueError, FileNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
    write_jsonl(records, args.target)
    print(f"{len(records)} records -> {args.target}")


if __name__ == "__main__":
    main()
