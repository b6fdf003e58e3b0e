"""Rollout engine on Hugging Face ``generate`` (KV cache, left-padded prompts, stop at EOS)."""

from __future__ import annotations

import torch

from rlad_pl.rollout.base import Rollout


def completion_mask_from_ids(completion_ids: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """1 on tokens up to and including the first EOS of each row (everything when there is none)."""
    is_eos = completion_ids == eos_token_id
    eos_before = is_eos.long().cumsum(-1) - is_eos.long()  # EOS tokens strictly before t
    return (eos_before == 0).long()


class HFGenerateEngine:
    """``model.generate`` with sampling (``temperature > 0``) or greedy decoding (``temperature == 0``).

    Texts are decoded up to the first EOS with special tokens kept (chat models write tags such as
    ``</think>`` as added tokens that the reward must see).

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
        sampling = temperature > 0
        options = {"temperature": temperature, "top_p": top_p, "top_k": 0} if sampling else {}
        input_ids = input_ids.repeat_interleave(num_samples, 0)  # prompt-major rows
        prompt_mask = attention_mask.repeat_interleave(num_samples, 0)
        sequences = model.generate(
            input_ids=input_ids,
            attention_mask=prompt_mask,
            do_sample=sampling,
            max_new_tokens=max_new_tokens,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
            use_cache=True,
            **options,
        )
        P = input_ids.shape[1]
        completion_ids = sequences[:, P:]
        completion_mask = completion_mask_from_ids(completion_ids, eos_token_id)
        completion_ids = completion_ids.masked_fill(completion_mask == 0, pad_token_id)
        sequences = torch.cat([sequences[:, :P], completion_ids], 1)
        is_eos = (completion_ids == eos_token_id) & (completion_mask == 1)
        text_mask = (completion_mask == 1) & ~is_eos
        # Text up to (not including) EOS; other special tokens stay, tasks may use them as tags.
        texts = self.tokenizer.batch_decode(
            [row[keep].tolist() for row, keep in zip(completion_ids, text_mask)],
            skip_special_tokens=False,
        )
        return Rollout(
            sequences=sequences,
            prompt_length=P,
            completion_ids=completion_ids,
            completion_mask=completion_mask,
            attention_mask=torch.cat([prompt_mask, completion_mask], 1),
            texts=texts,
            truncated=~is_eos.any(-1),
        )
