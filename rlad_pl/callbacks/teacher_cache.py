"""Teacher log-probs for a rollout: computed once, micro-batched, without grad, deduplicated, each
prompt run once."""

from __future__ import annotations

import time

import torch
from lightning.pytorch import Callback

from rlad_pl.rollout import Rollout, micro_batched_logprobs, shared_prompt_logprobs
from rlad_pl.rollout.scoring import first_occurrences


class TeacherLogprobCache(Callback):
    """Serves ``l_T`` (teacher log-probs on the completion tokens) of the current rollout.

    The RL module asks once per rollout and reuses the result in every update epoch and
    minibatch. Identical sequences within a rollout (frequent with short answers and ``G``
    samples per prompt) are run through the teacher once, and each prompt is prefilled once for
    its distinct completions (:func:`~rlad_pl.rollout.shared_prompt_logprobs`) instead of once per
    row. The module adds this callback only when its method needs a teacher (never for ``grpo``
    or ``alpha = 1``); list it under ``trainer.callbacks`` to change its settings.

    Args:
        micro_batch_size: sequences per teacher forward (``None``: the module's
            ``logprob_micro_batch_size``).
        dedup: run identical sequences once.
        share_prompts: prefill each prompt once for its completions (``False``: every sequence
            runs in full, as plain forwards; for comparisons).
    """

    def __init__(self, micro_batch_size: int | None = None, dedup: bool = True,
                 share_prompts: bool = True) -> None:
        self.micro_batch_size = micro_batch_size
        self.dedup = dedup
        self.share_prompts = share_prompts
        self._rollout_id: int | None = None
        self._teacher_logp: torch.Tensor | None = None
        self.last_seconds = 0.0
        self.last_hit_rate = 0.0
        self.calls = 0

    def logprobs(self, teacher: torch.nn.Module, rollout: Rollout, *,
                 micro_batch_size: int, chunk_size: int | None = None) -> torch.Tensor:
        """``l_T [N, C]`` for ``rollout`` (computed on the first call for that rollout)."""
        if self._rollout_id == id(rollout) and self._teacher_logp is not None:
            return self._teacher_logp
        start = time.perf_counter()
        sequences, attention_mask = rollout.sequences, rollout.attention_mask
        if self.dedup:
            rows, inverse = first_occurrences(sequences)
        else:
            rows = inverse = torch.arange(sequences.shape[0], device=sequences.device)
        run = shared_prompt_logprobs if self.share_prompts else micro_batched_logprobs
        logp = run(teacher, sequences[rows], attention_mask[rows], rollout.prompt_length,
                   micro_batch_size=self.micro_batch_size or micro_batch_size,
                   chunk_size=chunk_size)
        self._teacher_logp = logp[inverse]
        self._rollout_id = id(rollout)
        self.last_seconds = time.perf_counter() - start
        self.last_hit_rate = 1.0 - len(rows) / max(sequences.shape[0], 1)  # 0 rows: a rank idle
        self.calls += 1
        return self._teacher_logp

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """Drop the finished rollout's tensors."""
        self._rollout_id, self._teacher_logp = None, None
