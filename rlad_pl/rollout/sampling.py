"""Sampling completions from a causal LM for a list of prompt texts (evaluation, rejection
sampling for offline distillation, checks of the embedded models)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rlad_pl.rollout.base import SamplingSettings
from rlad_pl.rollout.kv_decode import KVDecodeEngine


@torch.no_grad()
def sample_completions(model, tokenizer, prompts: Sequence[str], *, num_samples: int = 1,
                       max_new_tokens: int = 400, temperature: float = 0.0,
                       top_p: float = 1.0) -> list[str]:
    """Completions, prompt-major (`num_samples` consecutive rows per prompt); greedy when
    `temperature` is 0. Decoded by the RL rollout's KV-cache engine, so texts are exactly what an
    RL rollout would score (EOS and padding dropped) and sampling follows the same distribution."""
    enc = tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
    was_training = model.training
    model.eval()
    rollout = KVDecodeEngine(tokenizer).generate(
        model, enc["input_ids"].to(model.device), enc["attention_mask"].to(model.device),
        SamplingSettings(num_samples=num_samples, temperature=temperature, top_p=top_p,
                         max_new_tokens=max_new_tokens))
    model.train(was_training)
    return rollout.texts
