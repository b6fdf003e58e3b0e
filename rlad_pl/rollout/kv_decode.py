"""Rollout engine: a plain decoding loop over the model's forward with a KV cache.

Same inputs, outputs and sampling distribution as :class:`~rlad_pl.rollout.HFGenerateEngine`,
without ``generate``'s per-token machinery. Where the time goes in ``generate`` for a small
policy (16 prompts x 8 samples x 64 tokens, one CPU thread; benchmarks/results/throughput.md):
``torch.multinomial`` about a quarter, the prefill of every prompt ``G`` times about a fifth, the
model's decode forwards the rest. This loop prefills each prompt once and copies its cache ``G``
times, and draws each token by inverse-CDF sampling (one uniform per row).

The same reuse serves scoring: :func:`shared_prompt_sequence_logprobs` (with grad) and
:func:`shared_prompt_logprobs` (no grad; the teacher's default pass) run each distinct prompt once
and the completions on that prompt's cache, instead of one copy of the padded prompt per row.
"""

from __future__ import annotations

import inspect
from itertools import pairwise

import numpy as np
import torch

from rlad_pl.objectives import completion_logprobs, token_entropy
from rlad_pl.rollout.base import LocalEngine, Rollout, SamplingSettings
from rlad_pl.rollout.logprobs import length_sorted_chunks


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


class KVDecodeEngine(LocalEngine):
    """Decoding loop: one prefill per prompt, its KV cache repeated ``num_samples`` times, then one
    forward per token on the last tokens only; stops when every row has produced EOS.

    Position ids follow the attention mask (left padding), as in ``generate`` and
    :func:`~rlad_pl.rollout.sequence_logprobs`, so the next-token logits at every step equal the
    model's full forward on the same prefix. Draws use the global torch RNG. Rows that have
    produced EOS leave the batch (and their KV cache) once they are ``compact_fraction`` of it:
    reasoning traces differ widely in length, and decoding finished rows until the longest trace
    ends wastes most of the work.

    Args:
        tokenizer: decodes completions into ``Rollout.texts``.
        compact_fraction: share of finished rows that triggers dropping them (each drop copies
            the cache of the rows kept; above 1: never).
    """

    def __init__(self, tokenizer, compact_fraction: float = 0.25) -> None:
        if not compact_fraction > 0:
            raise ValueError(f"compact_fraction must be > 0, got {compact_fraction}")
        super().__init__(tokenizer)
        self.compact_fraction = compact_fraction

    @torch.no_grad()
    def generate(
        self,
        model: torch.nn.Module,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        sampling: SamplingSettings,
    ) -> Rollout:
        G, P = sampling.num_samples, input_ids.shape[1]
        max_new_tokens, eos_token_id, pad_token_id = (sampling.max_new_tokens, self.eos_token_id,
                                                      self.pad_token_id)
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
        rows = torch.arange(N, device=input_ids.device)  # the batch's rows in the full rollout
        finished = torch.zeros(N, dtype=torch.bool, device=input_ids.device)
        for t in range(max_new_tokens):
            token = sample_tokens(logits, sampling.temperature, sampling.top_p).masked_fill(finished, pad_token_id)
            tokens[rows, t] = token
            finished |= token == eos_token_id
            if t + 1 == max_new_tokens or bool(finished.all()):
                break
            if int(finished.sum()) >= self.compact_fraction * len(rows):
                keep = (~finished).nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                rows, token, mask = rows[keep], token[keep], mask[keep]
                next_position, finished = next_position[keep], finished[keep]
            out = model(input_ids=token[:, None], attention_mask=mask[:, :P + t + 1],
                        position_ids=next_position + t, use_cache=True, **{cache_key: cache})
            logits = out.logits[:, -1].float()
        return Rollout.from_completions(
            input_ids.repeat_interleave(G, 0), attention_mask.repeat_interleave(G, 0),
            tokens[:, :t + 1], self.tokenizer, eos_token_id=eos_token_id, pad_token_id=pad_token_id)


def first_occurrences(rows_data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows, inverse)``: the first row of each distinct row of ``rows_data``, in row order, and
    for every row the index of its value in ``rows``."""
    unique, inverse = torch.unique(rows_data, dim=0, return_inverse=True)
    rows = torch.arange(len(inverse), device=rows_data.device)
    first = rows.new_full((len(unique),), len(rows)).scatter_reduce(0, inverse, rows, reduce="amin")
    is_first = torch.zeros_like(rows, dtype=torch.bool)
    is_first[first] = True
    return rows[is_first], (is_first.cumsum(0) - 1)[first[inverse]]


def distinct_prompts(sequences: torch.Tensor, attention_mask: torch.Tensor,
                     prompt_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows, index)``: the first row of each distinct prompt (tokens and mask of the first
    ``prompt_length`` columns), in row order, and per row the index of its prompt in ``rows``."""
    P = prompt_length
    return first_occurrences(torch.cat([sequences[:, :P], attention_mask[:, :P].long()], 1))


def run_chunks(run: torch.Tensor, size: int) -> list[tuple[int, int]]:
    """Row ranges ``[begin, end)`` of at most ``size`` consecutive rows made of whole runs; a run
    longer than ``size`` starts a range and is cut every ``size`` rows (its last piece may share a
    range with the runs after it)."""
    ends = (torch.nonzero(run[1:] != run[:-1]).flatten() + 1).tolist() + [len(run)]
    bounds = [0]
    for start, end in pairwise([0, *ends]):
        if end - bounds[-1] > size and start > bounds[-1]:
            bounds.append(start)
        while end - bounds[-1] > size:
            bounds.append(bounds[-1] + size)
    if bounds[-1] < len(run):
        bounds.append(len(run))
    return list(pairwise(bounds))


def shared_prompt_sequence_logprobs(
    model: torch.nn.Module,
    sequences: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_length: int,
    *,
    chunk_size: int | None = None,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`~rlad_pl.rollout.sequence_logprobs` with each distinct prompt (:func:`distinct_prompts`)
    prefilled once; its KV cache is indexed out to the prompt's rows for the completions.
    Differentiable (a prompt's gradient sums over its rows, as with separate rows)."""
    P = prompt_length
    first, prompt = distinct_prompts(sequences, attention_mask, P)
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=sequences[first, :P], attention_mask=attention_mask[first, :P],
                position_ids=positions[first, :P], use_cache=True, logits_to_keep=1)
    logits = out.logits[prompt, -1:]  # predicts completion token 0
    if sequences.shape[1] > P + 1:
        cache_key = _cache_keyword(model)
        cache = out[cache_key]
        cache.reorder_cache(prompt)
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
def shared_prompt_logprobs(
    model: torch.nn.Module,
    sequences: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_length: int,
    *,
    micro_batch_size: int,
    chunk_size: int | None = None,
    chunks: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """:func:`shared_prompt_sequence_logprobs` without grad, on chunks of at most
    ``micro_batch_size`` rows, each cut to its longest completion: the drop-in for
    :func:`~rlad_pl.rollout.micro_batched_logprobs` (values past a row's completion are arbitrary;
    0 past its chunk's longest completion). ``chunks``: the row chunks to score (default
    :func:`scoring_chunks`; given only to compare plans)."""
    P = prompt_length
    lengths = attention_mask[:, P:].sum(-1)
    out = torch.zeros(sequences.shape[0], sequences.shape[1] - P, dtype=torch.float32,
                      device=sequences.device)
    _, prompt = distinct_prompts(sequences, attention_mask, P)
    if chunks is None:
        chunks = scoring_chunks(prompt, lengths, P, micro_batch_size)
    for chunk in chunks:
        width = P + max(int(lengths[chunk].max()), 1)
        logp, _ = shared_prompt_sequence_logprobs(
            model, sequences[chunk, :width], attention_mask[chunk, :width], P,
            chunk_size=chunk_size)
        out[chunk, :logp.shape[1]] = logp
    return out


def scoring_chunks(prompt: torch.Tensor, lengths: torch.Tensor, prompt_length: int,
                   size: int) -> list[torch.Tensor]:
    """Row chunks of at most ``size`` for a shared-prompt pass: the rows of each prompt together
    (:func:`prompt_chunks`; fewest prefills) or rows of similar completion ``lengths`` together
    (:func:`~rlad_pl.rollout.logprobs.length_sorted_chunks`; least padding), whichever feeds the
    model fewer token positions (each chunk: ``prompt_length`` per distinct prompt, plus its rows
    times its longest completion). Equal-length completions keep the per-prompt plan; sampled
    reasoning traces of very different lengths usually take the length plan."""
    by_length = length_sorted_chunks(lengths, torch.arange(len(prompt), device=prompt.device),
                                     size)
    return min(prompt_chunks(prompt, size), by_length,
               key=lambda chunks: scored_positions(chunks, prompt, lengths, prompt_length))


def prompt_chunks(prompt: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Row chunks of at most ``size`` with the rows of each prompt together (:func:`run_chunks`)."""
    order = torch.argsort(prompt, stable=True)
    return [order[b:e] for b, e in run_chunks(prompt[order], size)]


def scored_positions(chunks: list[torch.Tensor], prompt: torch.Tensor, lengths: torch.Tensor,
                     prompt_length: int) -> int:
    """Token positions a shared-prompt pass over ``chunks`` feeds the model."""
    return sum(len(torch.unique(prompt[c])) * prompt_length
               + len(c) * max(int(lengths[c].max()), 1) for c in chunks)
