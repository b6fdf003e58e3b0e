"""Reading task records from local JSONL and Parquet files, with bad records reported as
file:line (JSONL) or file:row (Parquet)."""

from __future__ import annotations

import glob
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..tasks.base import Task

log = logging.getLogger(__name__)
MAX_REPORTED = 20  # bad records logged one by one per call; the rest only counted
RECORD_SUFFIXES = (".jsonl", ".parquet")


class DataFileError(ValueError):
    """A data file that cannot be used at all: an unsupported type, unreadable, or without a
    field the task needs in any of its rows. The message is one line naming the file."""


def expand_files(spec: str | Iterable[str] | None) -> list[Path]:
    """Files named by a path, a directory (all *.jsonl and *.parquet below it), a glob, or a
    list of those."""
    if spec is None:
        return []
    items = [spec] if isinstance(spec, (str, Path)) else list(spec)
    files: list[Path] = []
    for item in map(str, items):
        if any(c in item for c in "*?["):
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True))
        elif Path(item).is_dir():
            matches = sorted(p for suffix in RECORD_SUFFIXES for p in Path(item).rglob(f"*{suffix}"))
        else:
            matches = [Path(item)]
        if not matches or not all(p.is_file() for p in matches):
            raise FileNotFoundError(f"no data file(s) at {item!r}")
        files += [p for p in matches if p not in files]
    return files


def read_rows(path: str | Path) -> Iterator[tuple[str, dict | str]]:
    """`(source, row)` for each row of a local JSONL or Parquet file: source is "file:line" or
    "file:row N"; row is a dict, or (for a JSONL line that is not a JSON object) the reason.

    JSONL is read line by line (every line reported on its own); Parquet through the `datasets`
    library's local loader (nothing is downloaded). Raises DataFileError for a file of another
    type or an unreadable Parquet file, FileNotFoundError for a missing one.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in RECORD_SUFFIXES:
        raise DataFileError(f"{path}: unsupported file type {suffix or path.name!r}; allowed: "
                            f"{', '.join(RECORD_SUFFIXES)}")
    if not path.is_file():
        raise FileNotFoundError(f"no data file at {str(path)!r}")
    if suffix == ".parquet":
        for i, row in enumerate(_parquet_rows(path), 1):
            yield f"{path}:row {i}", row
        return
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                yield f"{path}:{lineno}", f"not JSON: {err}"
                continue
            yield f"{path}:{lineno}", row if isinstance(row, dict) else "line is not a JSON object"


def _parquet_rows(path: Path) -> list[dict]:
    from datasets import load_dataset
    from datasets.exceptions import DatasetGenerationError

    try:
        dataset = load_dataset("parquet", data_files=str(path), split="train")
    except (ValueError, OSError, DatasetGenerationError) as err:
        first = next((line.strip() for line in str(err).splitlines() if line.strip()),
                     type(err).__name__)
        raise DataFileError(f"{path}: not a readable Parquet file ({first})") from None
    return [dict(row) for row in dataset]


def normalized_rows(path: str | Path, task: Task) -> list[tuple[str, dict | str]]:
    """`read_rows` with each row through `task.normalize` (a failure becomes the row's reason).

    Raises DataFileError when a field the task requires is in none of the rows (a missing
    column, e.g. a file of another benchmark or task).
    """
    rows = []
    for source, row in read_rows(path):
        if isinstance(row, dict):
            try:
                row = task.normalize(row)
            except (ValueError, TypeError, KeyError, AttributeError) as err:
                row = f"cannot normalise: {err or type(err).__name__}"
        rows.append((source, row))
    records = [row for _, row in rows if isinstance(row, dict)]
    absent = [k for k in task.required_fields if records and not any(k in r for r in records)]
    if absent:
        columns = sorted({str(k) for r in records for k in r})
        raise DataFileError(f"{path}: no row has the field {absent[0]!r} that task "
                            f"{task.name!r} needs (fields: {', '.join(columns)})")
    return rows


class BadRecords:
    """Collects bad records: `skip` logs them (file:line and reason), `error` raises at once."""

    def __init__(self, on_bad_record: str = "skip"):
        if on_bad_record not in ("skip", "error"):
            raise ValueError(f"on_bad_record must be 'skip' or 'error', not {on_bad_record!r}")
        self.on_bad_record = on_bad_record
        self.count = 0

    def report(self, source: str, reason: str) -> None:
        message = f"bad record at {source}: {reason}"
        if self.on_bad_record == "error":
            raise ValueError(message + " (set on_bad_record: skip to drop such records)")
        self.count += 1
        if self.count <= MAX_REPORTED:
            log.warning("%s (skipped)", message)


def read_records(files: Iterable[Path], task: Task, bad: BadRecords) -> list[tuple[dict, str]]:
    """Valid records with their source ("file:line" / "file:row N"); the others go to `bad`.

    A record is bad when the line is not a JSON object, `task.validate` rejects it, or its subset
    differs from the one its file name implies (e.g. a 4-person puzzle in people3_*.jsonl).
    A file that cannot be read, or lacks a required field in every row, raises DataFileError.
    """
    out = []
    for path in files:
        expected = task.subset_from_filename(path.name)
        for source, record in normalized_rows(path, task):
            try:
                if isinstance(record, str):
                    raise ValueError(record)
                task.validate(record)
                if expected is not None and task.subset(record) != expected:
                    raise ValueError(f"subset {task.subset(record)} but file name says "
                                     f"{expected}")
            except (ValueError, TypeError, KeyError, AttributeError) as err:
                bad.report(source, str(err) or type(err).__name__)
                continue
            out.append((record, source))
    return out
