"""rlad-pl's math verifier against Hugging Face math-verify on a MATH-style corpus.

    pip install -e ".[bench]" torch==2.13.0     # math-verify enters only the bench extra
    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python -m benchmarks.math_verify_bench \
        [--out benchmarks/results/math_verify.md] [--skip-math-verify] [--corpus FILE]

Corpus: benchmarks/math_verify_corpus.jsonl (written by benchmarks/math_verify_corpus.py:
hand-written answer groups per kind plus generated ones, each answer wrapped in a completion
style). Each checker scores every (completion, gold) pair; the script prints agreement with the
expected labels and with each other, each checker's misses, and time per call. Then both
checkers get the adversarial inputs (huge exponents, deep nesting, 1 MB strings, code-looking
text, unicode): time per input, whether it raised, and whether anything was executed
(audit hook on exec/compile/system/spawn/open in this process).

math-verify is called as TRL's accuracy reward calls it: `parse(gold)` of the gold wrapped in
`$...$`, `parse(completion)` with its default extraction, `verify(gold, answer)`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOAD_AT_START = os.getloadavg()[0]
sys.path.insert(0, str(HERE.parent))

ADVERSARIAL = [
    ("9^9^9^9", "1"), ("9**9**9**9", "1"), ("2^{2^{2^{2^{2^{2}}}}}", "1"),
    ("10^{10^{10}}", "1"), ("(10^{64})^{64^{64}}", "1"), ("x^{9^{9^{9}}}", "x"),
    ("9" * 5000 + "^9", "1"), ("1" * 1_000_000, "1"), ("\\frac{1}{" + "9" * 100_000 + "}", "0"),
    ("(" * 10_000 + "1" + ")" * 10_000, "1"), ("\\sqrt{" * 5_000 + "2" + "}" * 5_000, "2"),
    ("\\frac{" * 20_000 + "1", "1"), ("\\boxed{" * 50_000 + "1", "1"),
    ("__import__('os').system('touch /tmp/pwned')", "0"), ("exec('import os')", "0"),
    ("().__class__.__base__.__subclasses__()", "0"), ("lambda: open('/etc/passwd').read()", "0"),
    ("\uff19\uff3e\uff19\uff3e\uff19", "1"), ("\u0661\u0662\u0663", "123"),
    ("1\u200b2\ufeff3", "123"), ("\x00\x01\x02", "0"), ("1e999999999", "1"),
    ("\\begin{pmatrix}" + "1&" * 5000 + "1\\end{pmatrix}", "1"), ("x" * 100_000, "x"),
    ("10^{10000}!", "1"), ("\\binom{10^{9}}{10^{5}}", "1"),
]


def load_corpus(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def ours():
    from rlad_pl.tasks.math import warm_up
    from rlad_pl.tasks.math.verify import check

    warm_up()

    def run(completion: str, gold: str) -> bool:
        return check(completion, gold).correct
    return run


def theirs():
    from math_verify import parse, verify

    def run(completion: str, gold: str) -> bool:
        gold_parsed = parse(f"${gold}$")
        return bool(verify(gold_parsed, parse(completion)))
    return run


def score(name: str, fn, corpus: list[dict]) -> dict:
    results, times, errors = [], [], 0
    for r in corpus:
        start = time.perf_counter()
        try:
            out = bool(fn(r["completion"], r["gold"]))
        except Exception:  # noqa: BLE001 - a raising checker counts as "not equal"
            out, errors = False, errors + 1
        times.append(time.perf_counter() - start)
        results.append(out)
    right = sum(o == r["expected"] for o, r in zip(results, corpus, strict=True))
    return {"name": name, "results": results, "right": right, "errors": errors,
            "mean_ms": 1000 * statistics.mean(times),
            "median_ms": 1000 * statistics.median(times),
            "max_ms": 1000 * max(times)}


def adversarial(name: str, fn) -> list[dict]:
    events: list[str] = []
    watched = ("exec", "compile", "os.system", "subprocess.Popen", "os.posix_spawn", "os.fork",
               "os.exec", "open")
    armed = [True]

    def hook(event, args):
        if armed[0] and event in watched:
            events.append(event)
    sys.addaudithook(hook)  # stays installed; `armed` limits it to the calls below
    rows = []
    for text, gold in ADVERSARIAL:
        events.clear()
        armed[0] = True
        start = time.perf_counter()
        try:
            fn(text, gold)
            raised = ""
        except Exception as err:  # noqa: BLE001
            raised = type(err).__name__
        elapsed = time.perf_counter() - start
        armed[0] = False
        rows.append({"input": _short(text), "seconds": elapsed, "raised": raised,
                     "events": sorted(set(events))})
    return rows


def _short(text: str) -> str:
    shown = text if len(text) <= 40 else f"{text[:30]}... ({len(text):,} chars)"
    return shown.encode("unicode_escape").decode().replace("|", "\\|")


def report(corpus, a, b, adv, args) -> str:
    n = len(corpus)
    agree = sum(x == y for x, y in zip(a["results"], b["results"], strict=True)) if b else None
    lines = [
        "# Math answer checking: rlad-pl `verify` vs math-verify",
        "",
        f"Command: `{_command()}{args}`  ",
        f"Machine: {platform.node()} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; load average "
        f"{LOAD_AT_START:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)  ",
        f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC  ",
        f"Corpus: benchmarks/math_verify_corpus.jsonl, {n} (completion, gold) pairs, "
        f"{sum(r['expected'] for r in corpus)} equal / {sum(not r['expected'] for r in corpus)} "
        "not equal (written for this project by benchmarks/math_verify_corpus.py)",
        "",
        "| checker | right | wrong | raised | mean ms/call | median | max |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in (a, b):
        if s:
            lines.append(f"| {s['name']} | {s['right']} / {n} | {n - s['right']} | {s['errors']} "
                         f"| {s['mean_ms']:.2f} | {s['median_ms']:.2f} | {s['max_ms']:.1f} |")
    if agree is not None:
        lines += ["", f"The two checkers agree on {agree} / {n} pairs."]
    for s in (a, b):
        if not s:
            continue
        misses = [(r, o) for r, o in zip(corpus, s["results"], strict=True)
                  if o != r["expected"]]
        lines += ["", f"## Misses of {s['name']} ({len(misses)})", ""]
        if misses:
            lines += ["| kind | gold | answer in the completion | expected | got |",
                      "|---|---|---|---|---|"]
            for r, o in misses:
                lines.append(f"| {r['kind']} | `{_short(r['gold'])}` | `{_short(r['answer'])}` "
                             f"| {r['expected']} | {o} |")
    lines += ["", "## Adversarial inputs", "",
              "Seconds per call (bound: 1 s); `raised`: the exception that escaped; `executed`: "
              "audit events (exec, compile, os.system, spawn, fork, open) seen during the call.",
              "", "| input | " + " | ".join(f"{name} s | raised | executed" for name, _ in adv)
              + " |", "|---|" + "---|---|---|" * len(adv)]
    for i, (text, _) in enumerate(ADVERSARIAL):
        cells = []
        for _, rows in adv:
            row = rows[i]
            cells += [f"{row['seconds']:.3f}", row["raised"] or "-",
                      ", ".join(row["events"]) or "-"]
        lines.append(f"| `{_short(text)}` | " + " | ".join(cells) + " |")
    for name, rows in adv:
        ok = sum(r["seconds"] < 1.0 and not r["raised"] and not r["events"] for r in rows)
        lines.append("")
        lines.append(f"{name}: {ok} / {len(rows)} answered in < 1 s without raising or executing.")
    return "\n".join(lines) + "\n"


def _command() -> str:
    """The command line that ran this script (thread settings included)."""
    threads = "".join(f"{k}={os.environ[k]} " for k in ("OMP_NUM_THREADS",) if k in os.environ)
    script = "-m benchmarks.math_verify_bench" if __spec__ else "benchmarks/math_verify_bench.py"
    return f"{threads}PYTHONPATH=$PWD python {script}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=HERE / "math_verify_corpus.jsonl")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown report here")
    parser.add_argument("--skip-math-verify", action="store_true")
    args = parser.parse_args()
    corpus = load_corpus(args.corpus)
    a = score("rlad-pl verify", ours(), corpus)
    b = None
    if not args.skip_math_verify:
        b = score("math-verify " + _version(), theirs(), corpus)
    adv = [("rlad-pl", adversarial("rlad-pl", ours()))]
    if b:
        adv.append(("math-verify", adversarial("math-verify", theirs())))
    extra = "".join(f" {a_}" for a_ in sys.argv[1:])
    text = report(corpus, a, b, adv, extra)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("math-verify")
    except Exception:  # noqa: BLE001
        return "?"


if __name__ == "__main__":
    main()
