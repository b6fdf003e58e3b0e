"""Wall-clock seconds per phase of a training step (the ``time/<phase>_s`` metrics)."""

from __future__ import annotations

import time
from contextlib import contextmanager


class PhaseTimes(dict):
    """``{phase: seconds}``; ``with times("rollout"): ...`` records one phase."""

    @contextmanager
    def __call__(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self[phase] = time.perf_counter() - start
