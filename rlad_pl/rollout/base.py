"""The rollout interface: what a generation engine returns and the call the RL module makes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


@dataclass
class Rollout:
    """Completions of a batch of prompts, ``G`` consecutive rows per prompt (prompt-major).

    Attributes:
        sequences: ``[B*G, P+C]`` prompt (left padded) followed by the completion (right padded).
        prompt_length: ``P``, the padded prompt length; completion token ``t`` sits at ``P + t``.
        completion_ids: ``[B*G, C]`` generated tokens; positions after the first EOS hold padding.
        completion_mask: ``[B*G, C]`` 1 on generated tokens up to and including the first EOS.
        attention_mask: ``[B*G, P+C]`` 1 on real prompt tokens and on completion tokens.
        texts: decoded completions (special tokens and padding removed).
        truncated: ``[B*G]`` True where generation hit ``max_new_tokens`` before EOS.
    """

    sequences: torch.Tensor
    prompt_length: int
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    attention_mask: torch.Tensor
    texts: list[str]
    truncated: torch.Tensor

    def select(self, rows: torch.Tensor) -> Rollout:
        """The rollout restricted to ``rows`` (in that order)."""
        return Rollout(
            sequences=self.sequences[rows],
            prompt_length=self.prompt_length,
            completion_ids=self.completion_ids[rows],
            completion_mask=self.completion_mask[rows],
            attention_mask=self.attention_mask[rows],
            texts=[self.texts[i] for i in rows.tolist()],
            truncated=self.truncated[rows],
        )

    @property
    def num_tokens(self) -> int:
        """Number of generated tokens (EOS included, padding excluded)."""
        return int(self.completion_mask.sum())


@runtime_checkable
class RolloutEngine(Protocol):
    """Turns prompts into sampled completions; swap it (e.g. for vLLM) without touching the module."""

    def generate(
        self,
        model: torch.nn.Module,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        *,
        num_samples: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        eos_token_id: int,
        pad_token_id: int,
    ) -> Rollout:
        """Sample ``num_samples`` completions per prompt (``temperature == 0``: greedy)."""
        ...
