"""`rlad-pl generate-kk`: write a K&K dataset in the published file layout."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .generator import generate_puzzles


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def cli_generate(argv: list[str] | None = None) -> int:
    """Write DIR/test/people{n}_num{M}.jsonl and DIR/train/people{n}_num{N}.jsonl per level.

    Test puzzles are drawn first and excluded from train, so the splits never share a puzzle
    and the test split does not depend on the train size. A level that has fewer distinct
    puzzles than asked (n=2 has 399) is written with what exists; the file name carries the
    real count and a warning is printed.
    """
    parser = argparse.ArgumentParser(prog="rlad-pl generate-kk", description=cli_generate.__doc__)
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--people", type=int, nargs="+", default=[2, 3, 4, 5, 6, 7, 8])
    parser.add_argument("--train-per-level", type=int, default=1000)
    parser.add_argument("--test-per-level", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for n in args.people:
        if not 2 <= n <= 12:
            parser.error(f"--people: {n} is outside 2..12")
        test = generate_puzzles(n, args.test_per_level, seed=f"{args.seed}/test")
        train = generate_puzzles(n, args.train_per_level, seed=f"{args.seed}/train", exclude=test)
        for split, records, asked in (("train", train, args.train_per_level),
                                      ("test", test, args.test_per_level)):
            path = args.out / split / f"people{n}_num{len(records)}.jsonl"
            write_jsonl(path, records)
            left = " not in the test split" if split == "train" else ""
            note = "" if len(records) == asked else \
                f"  WARNING: asked for {asked}, only {len(records)} distinct puzzles{left} exist"
            print(f"wrote {path} ({len(records)} puzzles){note}",
                  file=sys.stderr if note else sys.stdout)
    return 0
