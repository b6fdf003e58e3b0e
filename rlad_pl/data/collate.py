"""Collation of prompts into left-padded token ids (records stay on the host as Python objects)."""

from __future__ import annotations

import torch


class PromptCollator:
    """`(records, prompts) -> {"input_ids", "attention_mask", "records", "prompts"}`, LEFT
    padded."""

    def __init__(self, tokenizer, *, add_special_tokens: bool = True):
        self.tokenizer = tokenizer
        self.add_special_tokens = add_special_tokens

    def __call__(self, records: list[dict], prompts: list[str]) -> dict:
        ids = self.tokenizer(prompts, add_special_tokens=self.add_special_tokens)["input_ids"]
        width = max(map(len, ids), default=0)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
        attention_mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, seq in enumerate(ids):
            if seq:
                input_ids[row, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
                attention_mask[row, width - len(seq):] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask,
                "records": list(records), "prompts": list(prompts)}

    def items(self, batch: list[tuple[dict, str]]) -> dict:
        """Collate a list of (record, prompt) pairs (the map-style validation datasets)."""
        return self([r for r, _ in batch], [p for _, p in batch])
