"""``python -m analysis``: one row per property, symbolic proof and numeric check of the code."""

from __future__ import annotations

import argparse
import sys

from analysis import PROOFS, PROPERTIES, run_numeric
from analysis.branches import branches


def _cell(claims) -> str:
    held = sum(bool(h) for _, h in claims)
    return f"{'PASS' if held == len(claims) else 'FAIL'} {held}/{len(claims)}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="list every claim")
    parser.add_argument("--branches", action="store_true", help="print ds/dl on every branch")
    args = parser.parse_args(argv)

    if args.branches:
        print(f"{'clamp':7} {'clip':7} A  ds/dl")
        for b in branches():
            print(f"{b.clamp:7} {b.clip:7} {b.sign}  {b.ds_dl}")
        print()
    symbolic = {name: prove() for name, prove in PROOFS.items()}
    numeric = run_numeric()
    print(f"{'':3} {'property (docs/method.md)':68} {'symbolic':11} numeric (rlad_pl.objectives)")
    failed = False
    for name, title in PROPERTIES.items():
        s, n = _cell(symbolic[name]), _cell(numeric[name])
        failed |= "FAIL" in s + n
        print(f"{name:3} {title:68} {s:11} {n}")
        if args.verbose:
            for claim, holds in symbolic[name] + numeric[name]:
                print(f"      {'ok  ' if holds else 'FAIL'} {claim}")
    print("FAIL" if failed else "all properties PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
