"""(prompt, target) pairs for supervised fine-tuning, and their LightningDataModule.

Pairs come from a task's generator (the prompt is `task.prompt(record)`, the target
`task.sft_target(record, target_format)`; splits by `rlad_pl.tasks.splits.sft_splits`) or from a
JSONL file of `{"prompt", "target", "subset"}` lines (e.g. teacher samples kept by the verifier,
for the offline-distillation baseline). Validation and test hold records per difficulty subset;
the SFT module scores its greedy completions.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from rlad_pl.data.datamodule import D, build_task, check_config
from rlad_pl.errors import ConfigError
from rlad_pl.models import load_tokenizer
from rlad_pl.tasks.splits import sft_splits


def length_grouped_batches(lengths: Sequence[int], batch_size: int, seed: int,
                           window: int = 50) -> list[list[int]]:
    """Shuffled batches of similar lengths (less padding): sort shuffled windows of
    `window * batch_size` items by length, cut them into batches, shuffle the batches."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    for start in range(0, len(order), window * batch_size):
        chunk = sorted(order[start:start + window * batch_size], key=lengths.__getitem__)
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)
                    if len(chunk[i:i + batch_size]) == batch_size]
    rng.shuffle(batches)
    return batches


def collate_pairs(items: list[tuple[list[int], list[int]]], pad_id: int) -> dict:
    """Right-padded input_ids/attention_mask/labels; labels are -100 outside the target."""
    width = max(len(p) + len(t) for p, t in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for i, (p, t) in enumerate(items):
        n = len(p) + len(t)
        ids[i, :n] = torch.tensor(p + t)
        labels[i, len(p):n] = torch.tensor(t)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class SFTDataModule(L.LightningDataModule):
    """Supervised pairs for a task.

    Args:
        tokenizer: HF name/path or embedded short name.
        task: task name (`knights_knaves`, `math`).
        task_kwargs: extra arguments of `get_task`.
        levels: difficulty subsets to train and evaluate on (K&K: `people3` ...).
        target_format: how targets are rendered (K&K: `dfs`, `answer`, `backtrack`).
        train_per_level: generated training records per level.
        pairs_file: JSONL of `{"prompt", "target"}` lines used for training instead.
        val_per_level / test_per_level: held-out records per level (greedy accuracy).
        batch_size: pairs per training step (batches group pairs of similar length).
        seed / val_seed / test_seed: generator seeds of the training and held-out records
            (training excludes every held-out puzzle).
        max_length: pairs longer than this (in tokens) are dropped.
    """

    def __init__(self, tokenizer: str, task: str = "knights_knaves",
                 task_kwargs: dict | None = None,
                 levels: Sequence[str] = ("people3", "people4", "people5"),
                 target_format: str = "dfs", train_per_level: int = 20000,
                 pairs_file: str | None = None, val_per_level: int = 100,
                 test_per_level: int = 300, batch_size: int = 64, seed: int = 1,
                 val_seed: int = 998, test_seed: int = 999,
                 max_length: int = 512, num_workers: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.task = build_task(task, task_kwargs)
        self._check_config()
        self.tokenizer = load_tokenizer(tokenizer)
        self.train_pairs: list[tuple[list[int], list[int]]] = []
        self.val_records: dict[str, list[dict]] = {}
        self.test_records: dict[str, list[dict]] = {}
        self.epoch = 0

    def _check_config(self) -> None:
        """One-line ConfigErrors for bad values, before anything is generated or loaded."""
        h, task = self.hparams, self.task
        subsets = ", ".join(task.subsets) or "none"
        check_config(f"{D}.levels", list(h.levels),
                     bool(h.levels) and all(lv in task.subsets for lv in h.levels),
                     f"a non-empty list of subsets of task {task.name!r} ({subsets}; "
                     "task_kwargs choose them)")
        if not h.pairs_file:
            formats = ", ".join(task.sft_formats) or "none"
            check_config(f"{D}.target_format", h.target_format,
                         h.target_format in task.sft_formats,
                         f"one of task {task.name!r}'s SFT target formats ({formats})")
            check_config(f"{D}.train_per_level", h.train_per_level, h.train_per_level >= 1,
                         "an integer >= 1 (or give pairs_file)")
        for key in ("val_per_level", "test_per_level", "num_workers"):
            check_config(f"{D}.{key}", h[key], h[key] >= 0, "an integer >= 0")
        for key in ("batch_size", "max_length"):
            check_config(f"{D}.{key}", h[key], h[key] >= 1, "an integer >= 1")

    def splits(self) -> tuple[list[dict], dict[str, list[dict]], dict[str, list[dict]]]:
        """(train, val, test) records by `rlad_pl.tasks.splits.sft_splits` (train is empty with
        a `pairs_file`: its pairs are trained on instead)."""
        h = self.hparams
        return sft_splits(self.task, h.levels, 0 if h.pairs_file else h.train_per_level,
                          h.val_per_level, h.test_per_level, h.seed, h.val_seed, h.test_seed)

    def encode_pair(self, prompt: str, target: str) -> tuple[list[int], list[int]]:
        p = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        t = self.tokenizer(target, add_special_tokens=False)["input_ids"]
        return p, t + [self.tokenizer.eos_token_id]

    def setup(self, stage: str | None = None) -> None:
        if self.val_records:
            return
        h = self.hparams
        if h.pairs_file and not Path(h.pairs_file).is_file():
            raise ConfigError(f"{D}.pairs_file={h.pairs_file!r}: no such file; allowed: a JSONL "
                              'file of {"prompt", "target"} lines (or null: generated pairs)')
        train, self.val_records, self.test_records = self.splits()
        if h.pairs_file:
            lines = Path(h.pairs_file).read_text().splitlines()
            pairs = [json.loads(x) for x in lines if x.strip()]
            texts = [(p["prompt"], p["target"]) for p in pairs]
        else:
            texts = [(self.task.prompt(r), self.task.sft_target(r, h.target_format))
                     for r in train]
        encoded = [self.encode_pair(p, t) for p, t in texts]
        self.train_pairs = [e for e in encoded if len(e[0]) + len(e[1]) <= h.max_length]

    def train_dataloader(self) -> DataLoader:
        h = self.hparams
        self.epoch += 1
        lengths = [len(p) + len(t) for p, t in self.train_pairs]
        return DataLoader(self.train_pairs, num_workers=h.num_workers,
                          batch_sampler=length_grouped_batches(lengths, h.batch_size,
                                                               seed=h.seed * 1000 + self.epoch),
                          collate_fn=partial(collate_pairs, pad_id=self.tokenizer.pad_token_id))

    def val_dataloader(self) -> list[DataLoader]:
        return [DataLoader(recs, batch_size=256, collate_fn=list)
                for recs in self.val_records.values()]

    def test_dataloader(self) -> list[DataLoader]:
        return [DataLoader(recs, batch_size=256, collate_fn=list)
                for recs in self.test_records.values()]
