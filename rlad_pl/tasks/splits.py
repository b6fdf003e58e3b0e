"""Split rules of generated data, in one place: which records a split holds and what it is kept
apart from.

- RL prompt splits (`prompt_split`, used by `PromptDataModule`): generator seed
  `"<seed>/<split>"`; validation and test hold `size` records per subset, training `size` records
  over all subsets, none equal to an evaluation record.
- SFT splits (`sft_splits`, used by `SFTDataModule` and the offline-distillation sampler):
  validation and test per level with their own seeds (validation never shares a puzzle with
  test), training per level with the training seed, none equal to a held-out record.
- A test split disjoint from all training data (`disjoint_split`): per level, none equal to an
  excluded record and none whose prompt is an excluded prompt.
- `split_fingerprint`: a short hash that tells splits apart.

Generation is deterministic and prefix-stable for a seed, so a split can always be rebuilt from
its arguments.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

from .base import Task

Split = dict[str, list[dict]]  # level (subset) -> records


def prompt_split(task: Task, split: str, size: int, seed: int, exclude: Sequence[dict] = ()):
    """Generated records of an RL split: `size` in all for "train", `size` per subset of the task
    otherwise (`task.subsets`, or one unnamed subset), none equal to one in `exclude`."""
    split_seed = f"{seed}/{split}"
    if split == "train":
        return task.generate(size, seed=split_seed, exclude=exclude)
    return [r for subset in task.subsets or (None,)
            for r in task.generate(size, seed=split_seed, subset=subset, exclude=exclude)]


def held_out_records(task: Task, levels: Sequence[str], per_level: int, seed: int | str,
                     exclude: Sequence[dict] = ()) -> Split:
    """Generated records per level (a validation or test split)."""
    return {lv: task.generate(per_level, seed=seed, subset=lv, exclude=exclude) for lv in levels}


def held_out_splits(task: Task, levels: Sequence[str], val_per_level: int, test_per_level: int,
                    val_seed: int, test_seed: int) -> tuple[Split, Split]:
    """(val, test) records per level; the two never share a puzzle."""
    test = held_out_records(task, levels, test_per_level, test_seed)
    val = held_out_records(task, levels, val_per_level, val_seed, exclude=records_of(test))
    return val, test


def sft_splits(task: Task, levels: Sequence[str], train_per_level: int, val_per_level: int,
               test_per_level: int, seed: int, val_seed: int, test_seed: int
               ) -> tuple[list[dict], Split, Split]:
    """(train, val, test) of supervised fine-tuning: `held_out_splits`, then `train_per_level`
    training records per level (level-major) that share no puzzle with either."""
    val, test = held_out_splits(task, levels, val_per_level, test_per_level, val_seed, test_seed)
    held_out = records_of(val, test)
    train = [r for lv in levels for r in task.generate(train_per_level, seed=seed, subset=lv,
                                                       exclude=held_out)]
    return train, val, test


def disjoint_split(task: Task, levels: Sequence[str], per_level: int, seed: int | str,
                   exclude_records: Iterable[dict] = (), exclude_prompts: Iterable[str] = ()
                   ) -> Split:
    """`per_level` generated records per level, none equal to an excluded record and none whose
    prompt is an excluded prompt (e.g. a test split apart from every training split). Enough
    candidates are drawn to cover every prompt that may be dropped; raises ValueError when a
    level runs out."""
    exclude = list(exclude_records)
    prompts = set(exclude_prompts)
    split = {}
    for lv in levels:
        candidates = task.generate(per_level + len(prompts), seed=seed, subset=lv,
                                   exclude=exclude)
        kept = [r for r in candidates if task.prompt(r) not in prompts][:per_level]
        if len(kept) < per_level:
            raise ValueError(f"{lv}: only {len(kept)} test puzzles disjoint from training")
        split[lv] = kept
    return split


def records_of(*splits: Split) -> list[dict]:
    """All records of the given splits, in order."""
    return [r for split in splits for records in split.values() for r in records]


def split_fingerprint(split: Split, task: Task) -> str:
    """Short hash of a split's problems (their prompts: the same for every task)."""
    text = json.dumps({lv: [task.prompt(r) for r in records] for lv, records in split.items()})
    return hashlib.sha256(text.encode()).hexdigest()[:12]
