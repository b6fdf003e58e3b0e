"""The rollout interface: what a generation engine returns and the call the RL module makes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


def completion_mask_from_ids(completion_ids: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """1 on tokens up to and including the first EOS of each row (everything when there is none)."""
    is_eos = completion_ids == eos_token_id
    eos_before = is_eos.long().cumsum(-1) - is_eos.long()  # EOS tokens strictly before t
    return (eos_before == 0).long()


def completion_rows(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                    completion_ids: torch.Tensor, *, eos_token_id: int, pad_token_id: int):
    """``(sequences, attention_mask, completion_ids, completion_mask)`` of prompts ``[N, P]``
    followed by raw generated tokens ``[N, C]``, with padding after each row's first EOS."""
    completion_mask = completion_mask_from_ids(completion_ids, eos_token_id)
    completion_ids = completion_ids.masked_fill(completion_mask == 0, pad_token_id)
    return (torch.cat([prompt_ids, completion_ids], 1),
            torch.cat([prompt_mask.long(), completion_mask], 1), completion_ids, completion_mask)


#: What an engine that reports finished prompt groups (``reports_finished_groups``) calls as soon
#: as all ``G`` completions of a prompt are complete, while the others still decode:
#: ``(prompt index, sequences [G, P + L], attention_mask [G, P + L])``, the group's rows of the
#: rollout it will return up to the ``L`` tokens generated so far (the rollout only adds padding
#: columns on the right). Every group is reported once, those that end last when decoding ends.
GroupDone = Callable[[int, torch.Tensor, torch.Tensor], None]


@dataclass(frozen=True)
class SamplingSettings:
    """How an engine draws completions: ``num_samples`` per prompt at ``temperature`` (0 = greedy)
    with nucleus ``top_p`` (1 = off), at most ``max_new_tokens`` each, stopping at EOS."""

    num_samples: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64

    @classmethod
    def greedy(cls, max_new_tokens: int) -> SamplingSettings:
        return cls(num_samples=1, temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens)


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
        rollout_logp: ``[B*G, C]`` the engine's own log-probs of the sampled tokens (0 on padding),
            when the engine reports them (vLLM); ``None`` otherwise.
    """

    sequences: torch.Tensor
    prompt_length: int
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    attention_mask: torch.Tensor
    texts: list[str]
    truncated: torch.Tensor
    rollout_logp: torch.Tensor | None = None

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
            rollout_logp=None if self.rollout_logp is None else self.rollout_logp[rows],
        )

    @classmethod
    def from_completions(cls, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                         completion_ids: torch.Tensor, tokenizer, *, eos_token_id: int,
                         pad_token_id: int) -> Rollout:
        """Assemble a rollout from per-row prompts ``[N, P]`` and raw generated tokens ``[N, C]``:
        padding after the first EOS, masks, truncation flags, and texts decoded up to (not
        including) EOS with other special tokens kept (tasks may use them as tags)."""
        sequences, attention_mask, completion_ids, completion_mask = completion_rows(
            prompt_ids, prompt_mask, completion_ids, eos_token_id=eos_token_id,
            pad_token_id=pad_token_id)
        is_eos = (completion_ids == eos_token_id) & (completion_mask == 1)
        text_mask = (completion_mask == 1) & ~is_eos
        texts = tokenizer.batch_decode(
            [row[keep].tolist() for row, keep in zip(completion_ids, text_mask, strict=False)],
            skip_special_tokens=False,
        )
        return cls(
            sequences=sequences,
            prompt_length=prompt_ids.shape[1],
            completion_ids=completion_ids,
            completion_mask=completion_mask,
            attention_mask=attention_mask,
            texts=texts,
            truncated=~is_eos.any(-1),
        )

    @property
    def num_tokens(self) -> int:
        """Number of generated tokens (EOS included, padding excluded)."""
        return int(self.completion_mask.sum())


@runtime_checkable
class RolloutEngine(Protocol):
    """Turns prompts into sampled completions; swap it (e.g. for vLLM) without touching the module.

    An engine is built with the tokenizer (EOS and padding ids, decoding). ``update_weights``
    tells an engine that keeps its own copy of the policy (vLLM) that the weights changed; the
    module calls it before the first rollout after an optimizer step. An engine whose class sets
    ``reports_finished_groups = True`` also takes ``on_group_done`` (:data:`GroupDone`) in
    ``generate`` (``kv_decode``; Hugging Face ``generate`` and vLLM's ``LLM.generate`` return
    all completions at once)."""

    def generate(self, model: torch.nn.Module, input_ids: torch.Tensor,
                 attention_mask: torch.Tensor, sampling: SamplingSettings) -> Rollout:
        """``sampling.num_samples`` completions per left-padded prompt, prompt-major rows."""
        ...

    def update_weights(self, model: torch.nn.Module) -> None:
        """Take ``model``'s current weights (a no-op for engines that run ``model`` itself)."""
        ...


class LocalEngine:
    """Base of the engines that decode with the trained model itself (nothing to synchronise)."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id

    def update_weights(self, model: torch.nn.Module) -> None:
        """Nothing to do: :meth:`generate` runs ``model``."""
