"""Rollout engine on Hugging Face ``generate`` (KV cache, left-padded prompts, stop at EOS)."""

from __future__ import annotations

import torch

from rlad_pl.rollout.base import Rollout


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
        completion_ids = sequences[:, input_ids.shape[1]:]
        return Rollout.from_completions(input_ids, prompt_mask, completion_ids, self.tokenizer,
                                        eos_token_id=eos_token_id, pad_token_id=pad_token_id)
