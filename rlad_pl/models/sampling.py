"""Sampling completions from a causal LM and scoring them with a task (SFT evaluation,
rejection sampling for offline distillation, checks of the embedded models)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


@torch.no_grad()
def sample_completions(model, tokenizer, prompts: Sequence[str], *, num_samples: int = 1,
                       max_new_tokens: int = 400, temperature: float = 0.0,
                       top_p: float = 1.0) -> list[str]:
    """Completions, prompt-major (`num_samples` consecutive rows per prompt); greedy when
    `temperature` is 0. Special tokens (eos, pad) are dropped from the text."""
    enc = tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
    enc = {k: v.to(model.device) for k, v in enc.items()}
    sampling = temperature > 0
    extra = {"temperature": temperature, "top_p": top_p, "top_k": 0} if sampling else {}
    was_training = model.training
    model.eval()
    out = model.generate(
        **enc, do_sample=sampling, num_return_sequences=num_samples,
        max_new_tokens=max_new_tokens, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, **extra)
    model.train(was_training)
    return tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def score_records(task, model, tokenizer, records: Sequence[dict], *, batch_size: int = 256,
                  **sample_kwargs) -> list[list[dict]]:
    """Per record, the task's score dicts of its sampled completions (with the text added)."""
    n = sample_kwargs.get("num_samples", 1)
    scores = []
    for start in range(0, len(records), batch_size):
        batch = records[start:start + batch_size]
        texts = sample_completions(model, tokenizer, [task.prompt(r) for r in batch],
                                   **sample_kwargs)
        for i, record in enumerate(batch):
            rows = texts[i * n:(i + 1) * n]
            scores.append([{**task.score(t, record), "text": t} for t in rows])
    return scores
