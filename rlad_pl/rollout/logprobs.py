"""Teacher-forced log-probs of a rollout's completion tokens under any causal LM."""

from __future__ import annotations

import torch

from rlad_pl.objectives import completion_logprobs, token_entropy


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
    out = torch.zeros(sequences.shape[0], sequences.shape[1] - prompt_length,
                      dtype=torch.float32, device=sequences.device)
    rows = torch.arange(sequences.shape[0], device=sequences.device)
    for chunk in length_sorted_chunks(lengths, rows, micro_batch_size):
        width = prompt_length + max(int(lengths[chunk].max()), 1)
        logp, _ = sequence_logprobs(model, sequences[chunk, :width], attention_mask[chunk, :width],
                                    prompt_length, chunk_size=chunk_size, temperature=temperature)
        out[chunk, :logp.shape[1]] = logp
    return out
