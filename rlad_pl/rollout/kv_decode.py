"""Rollout engine: a plain decoding loop over the model's forward with a KV cache.

Same inputs, outputs and sampling distribution as :class:`~rlad_pl.rollout.HFGenerateEngine`,
without ``generate``'s per-token machinery. Where the time goes in ``generate`` for a small
policy (16 prompts x 8 samples x 64 tokens, one CPU thread; benchmarks/results/throughput.md):
``torch.multinomial`` about a quarter, the prefill of every prompt ``G`` times about a fifth, the
model's decode forwards the rest. This loop prefills each prompt once and copies its cache ``G``
times, and draws each token by inverse-CDF sampling (one uniform per row).

The same reuse serves scoring (:mod:`rlad_pl.rollout.scoring`, the shared-prompt pass).
"""

from __future__ import annotations

import numpy as np
import torch

from rlad_pl.rollout.base import (
    GroupDone,
    LocalEngine,
    Rollout,
    SamplingSettings,
    completion_rows,
)
from rlad_pl.rollout.scoring import cache_keyword


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


class KVDecodeEngine(LocalEngine):
    """Decoding loop: one prefill per prompt, its KV cache repeated ``num_samples`` times, then one
    forward per token on the last tokens only; stops when every row has produced EOS.

    Position ids follow the attention mask (left padding), as in ``generate`` and
    :func:`~rlad_pl.rollout.sequence_logprobs`, so the next-token logits at every step equal the
    model's full forward on the same prefix. Draws use the global torch RNG. Rows that have
    produced EOS leave the batch (and their KV cache) once they are ``compact_fraction`` of it:
    reasoning traces differ widely in length, and decoding finished rows until the longest trace
    ends wastes most of the work. With ``on_group_done`` (:data:`~rlad_pl.rollout.GroupDone`)
    each prompt's group is reported the step its last completion ends, so a consumer (the teacher
    server's requests) can start on it while the other groups still decode.

    Args:
        tokenizer: decodes completions into ``Rollout.texts``.
        compact_fraction: share of finished rows that triggers dropping them (each drop copies
            the cache of the rows kept; above 1: never).
    """

    reports_finished_groups = True

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
        on_group_done: GroupDone | None = None,
    ) -> Rollout:
        G, P = sampling.num_samples, input_ids.shape[1]
        max_new_tokens, eos_token_id, pad_token_id = (sampling.max_new_tokens, self.eos_token_id,
                                                      self.pad_token_id)
        attention_mask = attention_mask.long()
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        cache_key = cache_keyword(model)
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
        ended = torch.zeros(N, dtype=torch.bool, device=input_ids.device)  # all rows, for groups
        reported = torch.zeros(N // G, dtype=torch.bool)

        def report(complete: torch.Tensor, width: int) -> None:
            """Hand the prompt groups that are ``complete`` and not reported yet to the listener."""
            for group in (complete.cpu() & ~reported).nonzero().flatten().tolist():
                reported[group] = True
                prompt = slice(group, group + 1)
                sequences, mask, _, _ = completion_rows(
                    input_ids[prompt].expand(G, -1), attention_mask[prompt].expand(G, -1),
                    tokens[group * G:(group + 1) * G, :width], eos_token_id=eos_token_id,
                    pad_token_id=pad_token_id)
                on_group_done(group, sequences, mask)

        for t in range(max_new_tokens):
            token = sample_tokens(logits, sampling.temperature, sampling.top_p).masked_fill(finished, pad_token_id)
            tokens[rows, t] = token
            finished |= token == eos_token_id
            if on_group_done is not None:
                ended[rows[finished]] = True
                report(ended.view(-1, G).all(-1), t + 1)
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
        if on_group_done is not None:  # the groups with completions cut at max_new_tokens
            report(torch.ones_like(reported), t + 1)
        return Rollout.from_completions(
            input_ids.repeat_interleave(G, 0), attention_mask.repeat_interleave(G, 0),
            tokens[:, :t + 1], self.tokenizer, eos_token_id=eos_token_id, pad_token_id=pad_token_id)
