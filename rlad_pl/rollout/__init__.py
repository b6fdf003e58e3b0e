"""Generation of completions behind one small interface (HF generate now; vLLM can slot in later)."""

from rlad_pl.rollout.base import (
    LocalEngine,
    Rollout,
    RolloutEngine,
    SamplingSettings,
    completion_mask_from_ids,
)
from rlad_pl.rollout.hf_generate import HFGenerateEngine
from rlad_pl.rollout.kv_decode import shared_prompt_logprobs, shared_prompt_sequence_logprobs
from rlad_pl.rollout.logprobs import (
    length_sorted_chunks,
    micro_batched_logprobs,
    sequence_logprobs,
)

__all__ = [
    "HFGenerateEngine",
    "LocalEngine",
    "Rollout",
    "RolloutEngine",
    "SamplingSettings",
    "completion_mask_from_ids",
    "length_sorted_chunks",
    "micro_batched_logprobs",
    "sequence_logprobs",
    "shared_prompt_logprobs",
    "shared_prompt_sequence_logprobs",
]
