"""Offline distillation data: sample K completions per training prompt from the teacher, keep
the ones the verifier accepts (rejection sampling), write them as SFT pairs.

python -m rlad_pl.sft.offline_distill --teacher tiny-kk-teacher --out runs/offline/pairs.jsonl
then `python -m rlad_pl.sft fit --config configs/logic-offline.yaml` fine-tunes the student.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from rlad_pl.evaluation import score_records
from rlad_pl.models import load_model, load_tokenizer
from rlad_pl.tasks import get_task
from rlad_pl.tasks.splits import sft_splits


def rejection_sample(task, model, tokenizer, records: Sequence[dict], *, k: int = 4,
                     temperature: float = 1.0, max_new_tokens: int = 384,
                     unique: bool = True) -> list[dict]:
    """`{"prompt", "target", "subset"}` for every accepted (`correct`) teacher completion;
    with `unique`, identical completions of one prompt are kept once."""
    groups = score_records(task, model, tokenizer, records, num_samples=k,
                           temperature=temperature, max_new_tokens=max_new_tokens, batch_size=32)
    pairs = []
    for record, scores in zip(records, groups, strict=True):
        kept = {s["text"] for s in scores if s["correct"]} if unique else \
            [s["text"] for s in scores if s["correct"]]
        pairs += [{"prompt": task.prompt(record), "target": text, "subset": task.subset(record)}
                  for text in sorted(kept)]
    return pairs


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", default="tiny-kk-teacher")
    ap.add_argument("--task", default="knights_knaves")
    ap.add_argument("--levels", nargs="+", default=["people3"])
    ap.add_argument("--per-level", type=int, default=500, help="training prompts per level")
    ap.add_argument("--k", type=int, default=4, help="samples per prompt")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--max-new-tokens", type=int, default=384)
    ap.add_argument("--seed", type=int, default=1,
                    help="seed of the training split and of the teacher's sampling")
    ap.add_argument("--val", type=int, nargs=2, default=[100, 998], metavar=("PER_LEVEL", "SEED"),
                    help="validation split (as in the SFT config), never used here")
    ap.add_argument("--test", type=int, nargs=2, default=[300, 999], metavar=("PER_LEVEL", "SEED"),
                    help="test split (as in the SFT config), never used here")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    task = get_task(args.task)
    records, _, _ = sft_splits(task, args.levels, args.per_level, args.val[0], args.test[0],
                               args.seed, args.val[1], args.test[1])
    model, tok = load_model(args.teacher).eval(), load_tokenizer(args.teacher)
    torch.manual_seed(args.seed)
    pairs = rejection_sample(task, model, tok, records, k=args.k,
                             temperature=args.temperature, max_new_tokens=args.max_new_tokens)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    print(f"kept {len(pairs)} completions for {len({p['prompt'] for p in pairs})} of "
          f"{len(records)} prompts -> {out}")


if __name__ == "__main__":
    main()
