"""The training prompt stream: epoch-wise shuffled, sharded by rank and worker, resumable.

The stream is an endless sequence of global positions 0, 1, 2, ...; position p is record
`perm_e[p mod N]` of data epoch `e = p // N`, where `perm_e` is a permutation seeded by
(seed, e). Training step s of rank r takes the `batch_size` positions starting at
`start + (s * world_size + r) * batch_size`, so ranks are disjoint and together complete, and
dataloader worker w of W produces the steps s = w, w + W, ... (the DataLoader interleaves them
back in step order). Every batch carries `stream_position`, the global position after its step:
a resumed stream starts there and continues exactly.
"""

from __future__ import annotations

import random

from torch.utils.data import IterableDataset, get_worker_info

from .collate import PromptCollator


class PromptStream(IterableDataset):
    """Batches of prompts for one rank. `epochs=None` streams forever; otherwise the stream
    ends after the last step that all ranks can fill within `epochs` passes over the data."""

    def __init__(self, records: list[dict], prompts: list[str], collate: PromptCollator, *,
                 batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 start: int = 0, epochs: int | None = None, shuffle: bool = True):
        if not records:
            raise ValueError("the training stream has no records")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.records, self.prompts, self.collate = records, prompts, collate
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.rank, self.world_size, self.start, self.epochs = rank, world_size, start, epochs
        self._perms: dict[int, list[int]] = {}

    @property
    def step_size(self) -> int:
        """Global prompts consumed per training step (all ranks together)."""
        return self.batch_size * self.world_size

    def num_steps(self, start: int) -> int | None:
        """Steps left from global position `start` (None: endless)."""
        if self.epochs is None:
            return None
        return max(0, (self.epochs * len(self.records) - start) // self.step_size)

    def permutation(self, epoch: int) -> list[int]:
        if epoch not in self._perms:
            order = list(range(len(self.records)))
            if self.shuffle:
                random.Random(f"stream-{self.seed}-{epoch}").shuffle(order)
            self._perms = {epoch: order}  # keep one epoch; steps move forward
        return self._perms[epoch]

    def indices(self, step: int, start: int) -> list[int]:
        """Record indices of this rank's part of step `step` of a stream begun at `start`."""
        first = start + (step * self.world_size + self.rank) * self.batch_size
        n = len(self.records)
        return [self.permutation(p // n)[p % n] for p in range(first, first + self.batch_size)]

    def batch(self, step: int, start: int) -> dict:
        idx = self.indices(step, start)
        out = self.collate([self.records[i] for i in idx], [self.prompts[i] for i in idx])
        out["stream_position"] = start + (step + 1) * self.step_size
        return out

    def __iter__(self):
        """Iterate from the current `start` (read once: the owner may advance it meanwhile, so a
        new iteration, e.g. the next Lightning epoch, continues where training left off)."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        start = self.start
        step, stop = worker, self.num_steps(start)
        while stop is None or step < stop:
            yield self.batch(step, start)
            step += workers
