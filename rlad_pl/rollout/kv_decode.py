"""Rollout engine: a plain decoding loop over the model's forward with a KV cache.

Same inputs, outputs and sampling distribution as :class:`~rlad_pl.rollout.HFGenerateEngine`,
without ``generate``'s per-token machinery. Where the time goes in ``generate`` for a small
policy (16 prompts x 8 samples x 64 tokens, one CPU thread; benchmarks/results/throughput.md):
``torch.multinomial`` about a quarter, the prefill of every prompt ``G`` times about a fifth, the
model's decode forwards the rest. This loop prefills each prompt once and copies its cache ``G``
times, and draws each token by inverse-CDF sampling (one uniform per row).

The same reuse serves scoring: :func:`grouped_sequence_logprobs` (with grad, for the update) and
:func:`grouped_logprobs` (no grad, for the teacher) run each prompt once and the ``G`` completions
with the prompt's cache, instead of ``G`` copies of the padded prompt.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch

from rlad_pl.objectives import completion_logprobs, token_entropy
from rlad_pl.rollout.base import Rollout


def nucleus_filter(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """``scores`` with ``-inf`` outside the nucleus: the most probable tokens whose probabilities
    sum to at least ``top_p`` (all tokens tied with the least probable kept one stay in)."""
    probs = scores.softmax(-1)
    if probs.device.type == "cpu":  # torch.sort is ~30x slower than numpy's on CPU
        ascending = torch.from_numpy(np.sort(probs.numpy(), axis=-1))
    else:
        ascending = probs.sort(-1).values
    dropped = ascending.cumsum(-1) <= 1 - top_p  # a prefix of the ascending order
    dropped[:, -1] = False  # the most probable token always stays
    threshold = ascending.gather(-1, dropped.sum(-1, keepdim=True))
    return scores.masked_fill(probs < threshold, float("-inf"))


def sample_tokens(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """One token per row of float32 ``logits [N, V]``: argmax at ``temperature == 0``, else a draw
    from ``softmax(nucleus(logits / temperature))`` by inverse CDF with one uniform per row."""
    if temperature == 0:
        return logits.argmax(-1)
    scores = logits / temperature
    if top_p < 1:
        scores = nucleus_filter(scores, top_p)
    cdf = scores.softmax(-1).cumsum(-1)
    u = torch.rand(cdf.shape[0], 1, device=cdf.device, dtype=cdf.dtype) * cdf[:, -1:]
    # First index whose cdf exceeds u; the clamp only matters when rounding puts u on cdf[-1].
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp(max=cdf.shape[1] - 1)


def _cache_keyword(model: torch.nn.Module) -> str:
    """Name of the KV-cache argument and output: ``cache`` (recent transformers) or
    ``past_key_values``."""
    forward = getattr(model, "module", model).forward
    return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"


class KVDecodeEngine:
    """Decoding loop: one prefill per prompt, its KV cache repeated ``num_samples`` times, then one
    forward per token on the last tokens only; stops when every row has produced EOS.

    Position ids follow the attention mask (left padding), as in ``generate`` and
    :func:`~rlad_pl.rollout.sequence_logprobs`, so the next-token logits at every step equal the
    model's full forward on the same prefix. Draws use the global torch RNG.

    Args:
        tokenizer: decodes completions into ``Rollout.texts``.
    """

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    @torch.no_grad()
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
        G, P = num_samples, input_ids.shape[1]
        attention_mask = attention_mask.long()
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        cache_key = _cache_keyword(model)
        out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                    use_cache=True, logits_to_keep=1)
        cache = out[cache_key]
        if G > 1:
            cache.batch_repeat_interleave(G)
        logits = out.logits[:, -1].float().repeat_interleave(G, 0)
        N = logits.shape[0]
        mask = attention_mask.repeat_interleave(G, 0)
        mask = torch.cat([mask, mask.new_ones(N, max_new_tokens)], 1)
        next_position = positions[:, -1:].repeat_interleave(G, 0) + 1
        tokens = input_ids.new_full((N, max_new_tokens), pad_token_id)
        finished = torch.zeros(N, dtype=torch.bool, device=input_ids.device)
        for t in range(max_new_tokens):
            token = sample_tokens(logits, temperature, top_p).masked_fill(finished, pad_token_id)
            tokens[:, t] = token
            finished |= token == eos_token_id
            if t + 1 == max_new_tokens or bool(finished.all()):
                break
            out = model(input_ids=token[:, None], attention_mask=mask[:, :P + t + 1],
                        position_ids=next_position + t, use_cache=True, **{cache_key: cache})
            logits = out.logits[:, -1].float()
        return Rollout.from_completions(
            input_ids.repeat_interleave(G, 0), attention_mask.repeat_interleave(G, 0),
            tokens[:, :t + 1], self.tokenizer, eos_token_id=eos_token_id, pad_token_id=pad_token_id)


def grouped_sequence_logprobs(
    model: torch.nn.Module,
    sequences: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_length: int,
    *,
    group_size: int,
    chunk_size: int | None = None,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`~rlad_pl.rollout.sequence_logprobs` for rows that share their prompt in groups of
    ``group_size`` consecutive rows (a rollout): each prompt runs once and its KV cache is repeated
    for the completions, so the model sees ``N / G`` prompts instead of ``N``. Differentiable (the
    prompt's gradient sums over its completions, as with separate rows)."""
    N, P, G = sequences.shape[0], prompt_length, group_size
    if N % G or not (sequences[:, :P].view(N // G, G, P) == sequences[::G, None, :P]).all():
        raise ValueError(f"rows do not come in groups of {G} with equal prompts")
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=sequences[::G, :P], attention_mask=attention_mask[::G, :P],
                position_ids=positions[::G, :P], use_cache=True, logits_to_keep=1)
    logits = out.logits[:, -1:].repeat_interleave(G, 0)  # predicts completion token 0
    if sequences.shape[1] > P + 1:
        cache_key = _cache_keyword(model)
        cache = out[cache_key]
        cache.batch_repeat_interleave(G)
        rest = model(input_ids=sequences[:, P:-1], attention_mask=attention_mask[:, :-1],
                     position_ids=positions[:, P:-1], use_cache=True, **{cache_key: cache})
        logits = torch.cat([logits, rest.logits], 1)
    logp = completion_logprobs(logits, sequences[:, P:], chunk_size=chunk_size)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = token_entropy(logits.detach(), chunk_size=chunk_size)
    return logp, entropy


@torch.no_grad()
def grouped_logprobs(
    model: torch.nn.Module,
    sequences: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_length: int,
    *,
    group_size: int,
    micro_batch_size: int,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """:func:`grouped_sequence_logprobs` without grad, about ``micro_batch_size`` rows (whole
    groups) at a time: the drop-in for :func:`~rlad_pl.rollout.micro_batched_logprobs` on a
    rollout (teacher, reference, old policy)."""
    step = max(1, micro_batch_size // group_size) * group_size
    return torch.cat([
        grouped_sequence_logprobs(model, sequences[i:i + step], attention_mask[i:i + step],
                                  prompt_length, group_size=group_size, chunk_size=chunk_size)[0]
        for i in range(0, sequences.shape[0], step)
    ], 0)
