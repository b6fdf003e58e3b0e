"""Scoring: teacher-forced log-probs of a rollout's completion tokens under any causal LM.

Two passes over the same chunk loop (:func:`chunked_logprobs`):

* plain (:func:`sequence_logprobs`, :func:`micro_batched_logprobs`): each row runs in full;
  rows of similar completion length share a chunk, cut to its longest completion;
* shared-prompt (:func:`shared_prompt_sequence_logprobs`, :func:`shared_prompt_logprobs`, the
  teacher's default): each distinct prompt is prefilled once and its completions run on that
  prompt's KV cache, instead of one copy of the padded prompt per row.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from itertools import pairwise

import torch

from rlad_pl.objectives import completion_logprobs, token_entropy


def cache_keyword(model: torch.nn.Module) -> str:
    """Name of the KV-cache argument and output: ``cache`` (recent transformers) or
    ``past_key_values``."""
    forward = getattr(model, "module", model).forward
    return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"


def sequence_logprobs(
    model: torch.nn.Module,
    sequences: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_length: int,
    *,
    chunk_size: int | None = None,
    with_entropy: bool = False,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``log pi(y_t | x, y_<t)`` on the completion positions ``[N, C]`` (float32), and optionally
    the policy entropy there (detached). ``temperature`` divides the logits: the log-probs of the
    policy that sampled at that temperature.

    Position ids follow the attention mask, exactly as ``generate`` numbers left-padded prompts,
    so the log-probs equal the sampling distribution's. Only the last ``C + 1`` positions' logits
    are materialised.
    """
    C = sequences.shape[1] - prompt_length
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    logits = model(
        input_ids=sequences,
        attention_mask=attention_mask,
        position_ids=position_ids,
        logits_to_keep=C + 1,
        use_cache=False,
    ).logits[:, :-1]
    logp = completion_logprobs(logits, sequences[:, prompt_length:], chunk_size=chunk_size,
                               temperature=temperature)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = token_entropy(logits.detach(), chunk_size=chunk_size, temperature=temperature)
    return logp, entropy


def length_sorted_chunks(lengths: torch.Tensor, rows: torch.Tensor,
                         size: int) -> list[torch.Tensor]:
    """``rows`` split into chunks of at most ``size`` with similar completion ``lengths`` (so each
    chunk can be trimmed to its own longest completion)."""
    order = rows[torch.argsort(lengths[rows], stable=True)]
    return [order[i:i + size] for i in range(0, len(order), size)]


@torch.no_grad()
def micro_batched_logprobs(
    model: torch.nn.Module,
    sequences: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_length: int,
    *,
    micro_batch_size: int,
    chunk_size: int | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """:func:`sequence_logprobs` without grad, ``micro_batch_size`` rows at a time; rows are
    grouped by completion length and each group is cut to its longest completion (positions
    past a row's completion hold 0)."""
    lengths = attention_mask[:, prompt_length:].sum(-1)
    rows = torch.arange(sequences.shape[0], device=sequences.device)

    def score(seq, mask):
        return sequence_logprobs(model, seq, mask, prompt_length, chunk_size=chunk_size,
                                 temperature=temperature)[0]

    return chunked_logprobs(score, sequences, attention_mask, prompt_length,
                            length_sorted_chunks(lengths, rows, micro_batch_size))


def chunked_logprobs(
    score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    sequences: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_length: int,
    chunks: list[torch.Tensor],
) -> torch.Tensor:
    """``[N, C]`` log-probs from ``score(sequences, attention_mask)`` run on each row chunk cut to
    its longest completion; 0 past a chunk's longest completion."""
    P = prompt_length
    lengths = attention_mask[:, P:].sum(-1)
    out = torch.zeros(sequences.shape[0], sequences.shape[1] - P, dtype=torch.float32,
                      device=sequences.device)
    for chunk in chunks:
        width = P + max(int(lengths[chunk].max()), 1)
        logp = score(sequences[chunk, :width], attention_mask[chunk, :width])
        out[chunk, :logp.shape[1]] = logp
    return out


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
        cache_key = cache_keyword(model)
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
    if chunks is None:
        _, prompt = distinct_prompts(sequences, attention_mask, P)
        chunks = scoring_chunks(prompt, attention_mask[:, P:].sum(-1), P, micro_batch_size)

    def score(seq, mask):
        return shared_prompt_sequence_logprobs(model, seq, mask, P, chunk_size=chunk_size)[0]

    return chunked_logprobs(score, sequences, attention_mask, P, chunks)


def scoring_chunks(prompt: torch.Tensor, lengths: torch.Tensor, prompt_length: int,
                   size: int) -> list[torch.Tensor]:
    """Row chunks of at most ``size`` for a shared-prompt pass: the rows of each prompt together
    (:func:`prompt_chunks`; fewest prefills) or rows of similar completion ``lengths`` together
    (:func:`length_sorted_chunks`; least padding), whichever feeds the
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
