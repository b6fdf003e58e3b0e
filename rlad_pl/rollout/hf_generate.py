"""Rollout engine on Hugging Face ``generate`` (KV cache, left-padded prompts, stop at EOS)."""

from __future__ import annotations

import torch

from rlad_pl.rollout.base import LocalEngine, Rollout, SamplingSettings


class HFGenerateEngine(LocalEngine):
    """``model.generate`` with sampling (``temperature > 0``) or greedy decoding (``temperature == 0``).

    Texts are decoded up to the first EOS with special tokens kept (chat models write tags such as
    ``</think>`` as added tokens that the reward must see).

    Args:
        tokenizer: decodes completions into ``Rollout.texts``.
    """

    @torch.no_grad()
    def generate(
        self,
        model: torch.nn.Module,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        sampling: SamplingSettings,
    ) -> Rollout:
        sample = sampling.temperature > 0
        options = ({"temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": 0}
                   if sample else {})
        input_ids = input_ids.repeat_interleave(sampling.num_samples, 0)  # prompt-major rows
        prompt_mask = attention_mask.repeat_interleave(sampling.num_samples, 0)
        sequences = model.generate(
            input_ids=input_ids,
            attention_mask=prompt_mask,
            do_sample=sample,
            max_new_tokens=sampling.max_new_tokens,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            use_cache=True,
            **options,
        )
        completion_ids = sequences[:, input_ids.shape[1]:]
        return Rollout.from_completions(input_ids, prompt_mask, completion_ids, self.tokenizer,
                                        eos_token_id=self.eos_token_id,
                                        pad_token_id=self.pad_token_id)
