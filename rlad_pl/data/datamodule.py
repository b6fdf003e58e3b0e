"""PromptDataModule: prompts for RL from files (published K&K layout) or a task's generator."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Literal

import lightning as L
from torch.utils.data import DataLoader

from ..errors import ConfigError
from ..tasks import Task, get_task
from ..tasks.splits import prompt_split
from .collate import PromptCollator
from .records import BadRecords, DataFileError, expand_files, read_records
from .stream import PromptStream

log = logging.getLogger(__name__)
D = "data.init_args"  # the config path that ConfigErrors name keys under


def load_tokenizer(name_or_path):
    """A tokenizer object as is (left padding, pad token ensured), else
    `rlad_pl.models.load_tokenizer(name_or_path)`."""
    if isinstance(name_or_path, (str, Path)):
        from ..models import load_tokenizer as models_load_tokenizer

        return models_load_tokenizer(str(name_or_path))
    tokenizer = name_or_path
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise ValueError("the tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


class DataFilesError(ConfigError, FileNotFoundError):
    """Configured data files that do not exist (a ConfigError and a FileNotFoundError)."""


def build_task(task: str | Task, task_kwargs: dict | None, key: str = D) -> Task:
    """`task` itself, or `get_task(task, **task_kwargs)`; ConfigError naming `<key>.task` or
    `<key>.task_kwargs` when the name is unknown or the options do not fit."""
    if not isinstance(task, str):
        return task
    try:
        return get_task(task, **(task_kwargs or {}))
    except TypeError as err:
        raise ConfigError(f"{key}.task_kwargs={task_kwargs!r}: {err}") from None
    except ValueError as err:
        raise ConfigError(f"{key}.task={task!r}: {err}") from None


def check_config(key: str, value, ok: bool, allowed: str) -> None:
    """Raise a one-line ConfigError `<key>=<value>: <allowed>` unless `ok`."""
    if not ok:
        raise ConfigError(f"{key}={value!r}: {allowed}")


def _subset_key(name: str) -> tuple:
    match = re.match(r"(.*?)(\d+)$", name)
    return (match.group(1), int(match.group(2))) if match else (name, -1)


def _as_is(batch):
    return batch


class PromptDataModule(L.LightningDataModule):
    """Prompt records for RL training and per-subset evaluation.

    Args:
        task: task name ("knights_knaves", "math") or a Task.
        tokenizer: Hugging Face name/path or embedded short name (a tokenizer object also works).
        task_kwargs: options for the task when `task` is a name, e.g. `{template: chat}`.
        data_dir: a dataset in the published layout: train = data_dir/train, val and test =
            data_dir/test (overridden by the *_files keys).
        train_files, val_files, test_files: a file, directory, glob or list of them (JSONL or
            Parquet; see `rlad_pl.data.records`).
            Without train files the task's generator makes `train_size` records, and val/test
            (unless given as files) `val_size_per_subset` / `test_size_per_subset` per subset,
            disjoint from train.
        prompts_per_step: prompts per training step on each rank.
        val_prompts_per_step: batch size of the validation/test loaders (default
            prompts_per_step).
        seed: seeds the generator and the epoch-wise shuffle.
        num_workers: dataloader workers (tokenisation runs in them).
        on_bad_record: "skip" (log file:line and drop) or "error" (raise at the first one).
        max_prompt_tokens: prompts longer than this are bad records (never truncated).
        train_epochs: passes over the training data; None streams forever (set max_steps).
        shuffle: shuffle the training stream (epoch-wise, seeded).
        add_special_tokens: passed to the tokenizer when encoding prompts.

    Training batches carry `stream_position` (global prompts consumed after the step). The
    DataModule records it in `on_before_batch_transfer` (called in the main process only for
    batches that reach the training step), so `state_dict()` is exact under any number of
    workers and prefetching; a resumed run continues the stream where the checkpoint left it.
    """

    def __init__(
        self,
        task: str | Task = "knights_knaves",
        tokenizer: str = "tiny-kk-student",
        task_kwargs: dict[str, Any] | None = None,
        data_dir: str | None = None,
        train_files: str | list[str] | None = None,
        val_files: str | list[str] | None = None,
        test_files: str | list[str] | None = None,
        train_size: int = 10_000,
        val_size_per_subset: int = 100,
        test_size_per_subset: int = 100,
        prompts_per_step: int = 16,
        val_prompts_per_step: int | None = None,
        seed: int = 0,
        num_workers: int = 0,
        on_bad_record: Literal["skip", "error"] = "skip",
        max_prompt_tokens: int | None = None,
        train_epochs: int | None = None,
        shuffle: bool = True,
        add_special_tokens: bool = True,
    ):
        super().__init__()
        check_config(f"{D}.prompts_per_step", prompts_per_step, prompts_per_step >= 1,
                     "an integer >= 1")
        check_config(f"{D}.val_prompts_per_step", val_prompts_per_step,
                     val_prompts_per_step is None or val_prompts_per_step >= 1,
                     "null (= prompts_per_step) or an integer >= 1")
        check_config(f"{D}.on_bad_record", on_bad_record, on_bad_record in ("skip", "error"),
                     "'skip' or 'error'")
        for key, size in (("train_size", train_size), ("val_size_per_subset", val_size_per_subset),
                          ("test_size_per_subset", test_size_per_subset)):
            check_config(f"{D}.{key}", size, size >= 0, "an integer >= 0")
        check_config(f"{D}.train_size", train_size,
                     train_size >= 1 or train_files is not None or data_dir is not None,
                     "an integer >= 1 when training records are generated (no train files)")
        check_config(f"{D}.num_workers", num_workers, num_workers >= 0, "an integer >= 0")
        check_config(f"{D}.max_prompt_tokens", max_prompt_tokens,
                     max_prompt_tokens is None or max_prompt_tokens >= 1,
                     "null (no limit) or an integer >= 1")
        check_config(f"{D}.train_epochs", train_epochs, train_epochs is None or train_epochs >= 1,
                     "null (stream forever) or an integer >= 1")
        check_config(f"{D}.data_dir", data_dir, data_dir is None or Path(data_dir).is_dir(),
                     "an existing directory (with train/ and test/) or null")
        self.task = build_task(task, task_kwargs)
        self.tokenizer_name = tokenizer
        self.file_keys = {split: f"{D}.{split}_files" for split in ("train", "val", "test")}
        if data_dir is not None:
            self.file_keys = {split: f"{D}.{split}_files" if given else f"{D}.data_dir"
                              for split, given in (("train", train_files), ("val", val_files),
                                                   ("test", test_files))}
            train_files = train_files or str(Path(data_dir) / "train")
            val_files = val_files or str(Path(data_dir) / "test")
            test_files = test_files or str(Path(data_dir) / "test")
        self.files = {"train": train_files, "val": val_files, "test": test_files}
        self.sizes = {"train": train_size, "val": val_size_per_subset,
                      "test": test_size_per_subset}
        self.prompts_per_step = prompts_per_step
        self.val_prompts_per_step = val_prompts_per_step or prompts_per_step
        self.seed, self.num_workers, self.on_bad_record = seed, num_workers, on_bad_record
        self.max_prompt_tokens, self.train_epochs, self.shuffle = (max_prompt_tokens,
                                                                   train_epochs, shuffle)
        self.add_special_tokens = add_special_tokens
        self.tokenizer = None
        self.splits: dict[str, list[tuple[dict, str]]] | None = None  # (record, prompt) pairs
        self.consumed_prompts = 0  # global stream position (restored from checkpoints)
        self._loaded_state: dict | None = None
        self._stream: PromptStream | None = None

    # ---- loading -------------------------------------------------------------------------

    def _records(self, split: str, bad: BadRecords, exclude: list[dict]) -> list[tuple[dict, str]]:
        """(record, source) pairs of a split, from files or generated."""
        if self.files[split] is not None:
            try:
                files = expand_files(self.files[split])
            except FileNotFoundError as err:
                raise DataFilesError(f"{self.file_keys[split]}={self.files[split]!r}: {err}; "
                                     "allowed: JSONL / Parquet file(s), a directory or a glob") \
                    from None
            try:
                return read_records(files, self.task, bad)
            except DataFileError as err:
                raise ConfigError(f"{self.file_keys[split]}={self.files[split]!r}: {err}") \
                    from None
        if split != "train" and self.files["train"] is not None:
            return []  # files for training but none for this split: no evaluation split
        records = prompt_split(self.task, split, self.sizes[split], self.seed, exclude)
        return [(r, f"<generated {split} {i}>") for i, r in enumerate(records)]

    def _with_prompts(self, pairs: list[tuple[dict, str]], bad: BadRecords) -> list[tuple]:
        """Render prompts; a record whose prompt fails or is too long is bad."""
        out = []
        for record, source in pairs:
            try:
                out.append((record, self.task.prompt(record, tokenizer=self.tokenizer), source))
            except (ValueError, KeyError, TypeError) as err:
                bad.report(source, f"prompt: {err}")
        if self.max_prompt_tokens is None or not out:
            return [(r, p) for r, p, _ in out]
        lengths = map(len, self.tokenizer([p for _, p, _ in out],
                                          add_special_tokens=self.add_special_tokens)["input_ids"])
        kept = []
        for (record, prompt, source), n in zip(out, lengths, strict=True):
            if n > self.max_prompt_tokens:
                bad.report(source, f"prompt has {n} tokens > max_prompt_tokens "
                                   f"{self.max_prompt_tokens}")
            else:
                kept.append((record, prompt))
        return kept

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        self.tokenizer = load_tokenizer(self.tokenizer_name)
        bad = BadRecords(self.on_bad_record)
        splits = {}
        for split in ("val", "test", "train"):  # evaluation first: generated train excludes it
            exclude = [r for s in ("val", "test") for r, _ in splits.get(s, [])]
            splits[split] = self._with_prompts(self._records(split, bad, exclude), bad)
        self.splits = splits
        log.info("PromptDataModule: %s; %d bad record(s) skipped",
                 ", ".join(f"{k} {len(v)}" for k, v in splits.items()), bad.count)
        if bad.count:
            log.warning("PromptDataModule: %d bad record(s) skipped in total", bad.count)
        if self._loaded_state is not None:
            self._check_state(self._loaded_state)

    # ---- loaders -------------------------------------------------------------------------

    def collator(self) -> PromptCollator:
        return PromptCollator(self.tokenizer, add_special_tokens=self.add_special_tokens)

    def train_stream(self, rank: int | None = None, world_size: int | None = None) -> PromptStream:
        """The rank's training stream, starting at the current stream position."""
        if self.splits is None:
            self.setup("fit")
        trainer = self.trainer
        rank = rank if rank is not None else (trainer.global_rank if trainer else 0)
        world_size = world_size if world_size is not None else (trainer.world_size if trainer
                                                                 else 1)
        pairs = self.splits["train"]
        return PromptStream([r for r, _ in pairs], [p for _, p in pairs], self.collator(),
                            batch_size=self.prompts_per_step, seed=self.seed, rank=rank,
                            world_size=world_size, start=self.consumed_prompts,
                            epochs=self.train_epochs, shuffle=self.shuffle)

    def train_dataloader(self) -> DataLoader:
        self._stream = self.train_stream()
        return DataLoader(self._stream, batch_size=None, num_workers=self.num_workers,
                          collate_fn=_as_is)

    def _subsets(self, split: str) -> dict[str, list[tuple[dict, str]]]:
        if self.splits is None:
            self.setup(split)
        groups: dict[str, list] = {}
        for record, prompt in self.splits[split]:
            groups.setdefault(self.task.subset(record), []).append((record, prompt))
        return {k: groups[k] for k in sorted(groups, key=_subset_key)}

    def _eval_loaders(self, split: str) -> list[DataLoader]:
        collate = self.collator().items
        return [DataLoader(items, batch_size=self.val_prompts_per_step, shuffle=False,
                           num_workers=self.num_workers, collate_fn=collate)
                for items in self._subsets(split).values()]

    @property
    def val_subset_names(self) -> list[str]:
        """Names of the validation loaders, in order (e.g. people2 ... people8)."""
        return list(self._subsets("val"))

    @property
    def test_subset_names(self) -> list[str]:
        return list(self._subsets("test"))

    def val_dataloader(self) -> list[DataLoader]:
        return self._eval_loaders("val")

    def test_dataloader(self) -> list[DataLoader]:
        return self._eval_loaders("test")

    # ---- resumable stream ----------------------------------------------------------------

    def on_before_batch_transfer(self, batch, dataloader_idx: int):
        """Record the stream position of each training batch that reaches the module."""
        trainer = self.trainer
        if isinstance(batch, dict) and "stream_position" in batch and \
                (trainer is None or trainer.training):
            self.consumed_prompts = int(batch["stream_position"])
            if self._stream is not None:  # a re-iterated loader continues from here
                self._stream.start = self.consumed_prompts
        return batch

    def state_dict(self) -> dict:
        return {"consumed_prompts": self.consumed_prompts, "seed": self.seed,
                "train_records": len(self.splits["train"]) if self.splits else None}

    def load_state_dict(self, state_dict: dict) -> None:
        self.consumed_prompts = int(state_dict["consumed_prompts"])
        if self._stream is not None:
            self._stream.start = self.consumed_prompts
        self._loaded_state = dict(state_dict)
        if self.splits is not None:
            self._check_state(state_dict)

    def _check_state(self, state: dict) -> None:
        n = len(self.splits["train"])
        if state.get("seed") != self.seed or state.get("train_records") not in (None, n):
            log.warning("PromptDataModule: resuming with seed %s / %d train records, the "
                        "checkpoint had seed %s / %s: the stream continues but not exactly",
                        self.seed, n, state.get("seed"), state.get("train_records"))
