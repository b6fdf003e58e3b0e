"""Build the shared embedded tokenizer: `python -m rlad_pl.models.recipes.build_tokenizer OUT`.

The corpus is generated K&K prompts and targets (all levels and target formats), the published
quiz wording and arithmetic; the 256 bytes stay in the alphabet, so any text encodes.
"""

from __future__ import annotations

import sys

from rlad_pl.models.tokenizer import build_tokenizer, save_tokenizer
from rlad_pl.tasks import get_task
from rlad_pl.tasks.knights_knaves import NAMES, generate_puzzles

WORDS = [*NAMES, "knight", "knave", "not", "and", "or", "if", "then", "iff", "so", "ok", "x",
         "back", "is", "a", "T", "F"]


def corpus(per_level: int = 300):
    task = get_task("knights_knaves")
    for n in range(2, 9):
        for rec in generate_puzzles(n, per_level, seed="tokenizer"):
            yield rec["quiz"]
            for fmt in task.sft_formats:
                yield task.prompt(rec) + task.sft_target(rec, fmt)
    for a in range(0, 1000, 7):
        yield f"What is {a} + {a * 3 % 97} * {a % 13}? The answer is {a + a * 3 % 97 * (a % 13)}."


def main(out: str) -> None:
    tok = build_tokenizer(corpus(), vocab_size=1280, words=WORDS)
    single = [w for w in WORDS for text in (w, " " + w)
              if len(tok(text, add_special_tokens=False)["input_ids"]) != 1]
    if single:
        raise SystemExit(f"not single tokens: {single}")
    save_tokenizer(tok, out)
    print(f"saved {len(tok)} tokens to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
