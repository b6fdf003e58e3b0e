"""Mutation testing of the loss code (rlad_pl/objectives/) with mutmut; prints the kill rate.

    OMP_NUM_THREADS=1 python -m benchmarks.mutation             # fresh run, all mutants
    python -m benchmarks.mutation --resume                      # keep mutants/ (cached results)
    python -m benchmarks.mutation "rlad_pl.objectives.kl*"      # a subset (mutmut name globs)

Configuration: ``[tool.mutmut]`` in pyproject.toml (what is mutated, which tests run). Install
with ``pip install -e ".[mutation]" torch==<your torch>``. Not part of the default test run: it
takes tens of minutes (benchmarks/results/mutation.md has the measured time).

Every surviving mutant must be killed by a test or listed as equivalent in
benchmarks/mutation_equivalent.py (matched on the function and the changed line, so the
list survives mutmut renumbering its mutants). The command exits non-zero when a survivor is
unexplained or when fewer than ``--target`` of the non-equivalent mutants are killed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: mutmut statuses that count as a killed mutant (a hang or a crash is a detected change)
DETECTED = ("killed", "timeout", "segfault")


def _mutmut(*args: str, env: dict | None = None, capture: bool = True) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", *args],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=capture,
        check=False,
    )
    return (out.stdout or "") if capture else ""


def statuses() -> dict[str, str]:
    """``{mutant name: status}`` from ``mutmut results --all true``."""
    rows = {}
    for line in _mutmut("results", "--all", "true").splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and name.startswith("rlad_pl."):
            rows[name] = status
    return rows


def mutation(name: str) -> tuple[str, list[str], list[str]]:
    """``(function, removed lines, added lines)`` of one mutant, from ``mutmut show``."""
    removed, added = [], []
    for line in _mutmut("show", name).splitlines():
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("-"):
            removed.append(line[1:].strip())
        elif line.startswith("+"):
            added.append(line[1:].strip())
    module, _, rest = name.rpartition(".")
    function = re.sub(r"__mutmut_\d+$", "", rest)
    function = function.removeprefix("x_").removeprefix("xǁ")  # mutmut's prefixes
    function = function.replace("ǁ", ".")  # methods are Class ǁ method in mutmut's names
    return f"{module}.{function}", removed, added


def equivalent_reason(function: str, removed: list[str], added: list[str]) -> str | None:
    from benchmarks.mutation_equivalent import EQUIVALENT

    for entry in EQUIVALENT:
        if (
            entry["function"] == function
            and [entry["before"]] == removed
            and [entry["after"]] == added
        ):
            return entry["why"]
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mutation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="mutant name globs (default: all)")
    parser.add_argument("--resume", action="store_true", help="keep mutants/ and its results")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--json", type=Path, help="write the survivors and counts here")
    args = parser.parse_args(argv)

    if not args.resume:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.pop("PYTHONPATH", None)  # mutmut puts mutants/ first on sys.path itself
    start = time.monotonic()
    _mutmut("run", "--max-children", str(args.max_children), *args.names, env=env, capture=False)
    duration = time.monotonic() - start

    rows = statuses()
    if args.names:
        import fnmatch

        rows = {k: v for k, v in rows.items() if any(fnmatch.fnmatch(k, g) for g in args.names)}
    counts = Counter(rows.values())
    survivors = []
    for name, status in sorted(rows.items()):
        if status in DETECTED:
            continue
        function, removed, added = mutation(name)
        why = equivalent_reason(function, removed, added) if status == "survived" else None
        survivors.append({"name": name, "status": status, "function": function,
                          "before": removed, "after": added, "equivalent": why})
    equivalent = sum(1 for s in survivors if s["equivalent"])
    unexplained = [s for s in survivors if not s["equivalent"]]
    killed = sum(counts.get(status, 0) for status in DETECTED)
    total = len(rows)
    rate = killed / max(total - equivalent, 1)

    print(f"\nmutmut {_mutmut('--version').split()[-1] if _mutmut('--version') else '?'} "
          f"on {platform.node()} ({os.cpu_count()} CPUs, {platform.python_version()}), "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {duration / 60:.1f} min")
    print(f"mutants: {total}; " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    print(f"equivalent (benchmarks/mutation_equivalent.py): {equivalent}")
    print(f"kill rate: {killed}/{total} = {killed / max(total, 1):.1%} of all mutants, "
          f"{killed}/{total - equivalent} = {rate:.1%} of the non-equivalent ones")
    for s in unexplained:
        print(f"NOT EXPLAINED [{s['status']}] {s['name']}: {s['before']} -> {s['after']}")
    if args.json:
        args.json.write_text(json.dumps({"counts": counts, "equivalent": equivalent,
                                         "duration_s": round(duration), "survivors": survivors},
                                        indent=1, ensure_ascii=False))
    ok = rate >= args.target and not unexplained
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
