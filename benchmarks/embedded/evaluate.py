"""Greedy test accuracy per level and reward variance of sampled groups for an embedded model.

python benchmarks/embedded/evaluate.py tiny-kk-student --per-level 300 --variance 64 --out m.json

`test`: the tags of `rlad_pl.evaluation` (greedy: `accuracy/<level>`, `accuracy/mean`,
`malformed/...`) on the generated test split (`--test-seed`); `variance`: per level, 8 samples
at temperature 1 on training prompts (`--train-seed`): `mixed@8` (share of groups whose samples
are not all equally correct), `mean@8`, `pass@8` (tags `<name>/<level>` and the mean `<name>`).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from rlad_pl.evaluation import evaluate_split, group_signal, summarize
from rlad_pl.models import load_model, load_tokenizer
from rlad_pl.tasks import get_task
from rlad_pl.tasks.splits import held_out_records


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--task", default="knights_knaves")
    ap.add_argument("--levels", nargs="+", default=["people3"])
    ap.add_argument("--per-level", type=int, default=300)
    ap.add_argument("--test-seed", type=int, default=999)
    ap.add_argument("--train-seed", type=int, default=1)
    ap.add_argument("--variance", type=int, default=0, help="training prompts per level")
    ap.add_argument("--max-new-tokens", type=int, default=384)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.manual_seed(0)
    task = get_task(args.task)
    model, tok = load_model(args.model).eval(), load_tokenizer(args.model)
    start = time.time()
    tests = held_out_records(task, args.levels, args.per_level, args.test_seed)
    result = {"model": args.model,
              "test": evaluate_split(task, model, tok, tests, max_new_tokens=args.max_new_tokens,
                                     batch_size=args.batch_size),
              "variance": {}}
    print(json.dumps(result["test"]), flush=True)
    per_level = {}
    for level in args.levels if args.variance else []:
        records = task.generate(args.variance, seed=args.train_seed, subset=level)
        per_level[level] = group_signal(task, model, tok, records, num_samples=8,
                                        max_new_tokens=args.max_new_tokens, batch_size=16)
        print(level, per_level[level], flush=True)
    result["variance"] = summarize(per_level)
    result["seconds"] = round(time.time() - start, 1)
    print(json.dumps(result))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
