"""Generation of completions behind one small interface (KV-cache loop, HF generate, vLLM), and
scoring of sequences (log-probs under any model)."""

from rlad_pl.rollout.base import (
    GroupDone,
    LocalEngine,
    Rollout,
    RolloutEngine,
    SamplingSettings,
    completion_mask_from_ids,
)
from rlad_pl.rollout.hf_generate import HFGenerateEngine
from rlad_pl.rollout.kv_decode import KVDecodeEngine
from rlad_pl.rollout.scoring import (
    length_sorted_chunks,
    micro_batched_logprobs,
    sequence_logprobs,
    shared_prompt_logprobs,
    shared_prompt_sequence_logprobs,
)

__all__ = [
    "GroupDone",
    "HFGenerateEngine",
    "KVDecodeEngine",
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
