"""Greedy test accuracy per level and reward variance of sampled groups for an embedded model.

python benchmarks/embedded/evaluate.py tiny-kk-student --per-level 300 --variance 64 --out m.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from rlad_pl.models import load_model, load_tokenizer
from rlad_pl.models.sampling import score_records
from rlad_pl.sft_data import held_out_records
from rlad_pl.tasks import get_task


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
    result = {"model": args.model, "test": {}, "variance": {}}
    start = time.time()
    tests = held_out_records(task, args.levels, args.per_level, args.test_seed)
    for level, records in tests.items():
        scores = score_records(task, model, tok, records, max_new_tokens=args.max_new_tokens,
                               batch_size=args.batch_size)
        result["test"][level] = sum(s[0]["correct"] for s in scores) / len(scores)
        print(level, result["test"][level], flush=True)
    result["test_mean"] = sum(result["test"].values()) / len(result["test"])
    for level in args.levels if args.variance else []:
        records = task.generate(args.variance, seed=args.train_seed, subset=level)
        scores = score_records(task, model, tok, records, num_samples=8, temperature=1.0,
                               max_new_tokens=args.max_new_tokens, batch_size=16)
        correct = [[s["correct"] for s in group] for group in scores]
        result["variance"][level] = {
            "var_share": sum(len(set(c)) > 1 for c in correct) / len(correct),
            "sampled_acc": sum(map(sum, correct)) / (8 * len(correct)),
            "pass_at_8": sum(any(c) for c in correct) / len(correct)}
        print(level, result["variance"][level], flush=True)
    result["seconds"] = round(time.time() - start, 1)
    print(json.dumps(result))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
