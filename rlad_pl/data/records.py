"""Reading task records from JSONL files, with bad records reported as file:line."""

from __future__ import annotations

import glob
import json
import logging
from collections.abc import Iterable
from pathlib import Path

from ..tasks.base import Task

log = logging.getLogger(__name__)
MAX_REPORTED = 20  # bad records logged one by one per call; the rest only counted


def expand_files(spec: str | Iterable[str] | None) -> list[Path]:
    """Files named by a path, a directory (all *.jsonl below it), a glob, or a list of those."""
    if spec is None:
        return []
    items = [spec] if isinstance(spec, (str, Path)) else list(spec)
    files: list[Path] = []
    for item in map(str, items):
        if any(c in item for c in "*?["):
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True))
        elif Path(item).is_dir():
            matches = sorted(Path(item).rglob("*.jsonl"))
        else:
            matches = [Path(item)]
        if not matches or not all(p.is_file() for p in matches):
            raise FileNotFoundError(f"no data file(s) at {item!r}")
        files += [p for p in matches if p not in files]
    return files


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
    """Valid records with their source "file:line"; the others go to `bad`.

    A record is bad when the line is not a JSON object, `task.validate` rejects it, or its subset
    differs from the one its file name implies (e.g. a 4-person puzzle in people3_*.jsonl).
    """
    out = []
    for path in files:
        expected = task.subset_from_filename(path.name)
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                source = f"{path}:{lineno}"
                try:
                    raw = json.loads(line)
                    if not isinstance(raw, dict):
                        raise TypeError("line is not a JSON object")
                    record = task.normalize(raw)
                    task.validate(record)
                    if expected is not None and task.subset(record) != expected:
                        raise ValueError(f"subset {task.subset(record)} but file name says "
                                         f"{expected}")
                except (ValueError, TypeError, KeyError, AttributeError) as err:
                    bad.report(source, str(err) or type(err).__name__)
                    continue
                out.append((record, source))
    return out
