"""The HF-generate rollout engine and teacher-forced log-probs of its completions."""

import torch

from rlad_pl.rollout import (
    HFGenerateEngine,
    RolloutEngine,
    SamplingSettings,
    completion_mask_from_ids,
    sequence_logprobs,
)
from tests.test_module_fixtures import random_qwen3

PROMPTS = ["A : B knight . B : A knave . ? <think>", "A : not B knight . ? <think>"]


def encode(tokenizer):
    return tokenizer(PROMPTS, return_tensors="pt", padding=True, add_special_tokens=False)


def test_completion_mask_stops_after_first_eos():
    ids = torch.tensor([[5, 0, 7, 0], [5, 6, 7, 8], [0, 1, 1, 1]])
    mask = completion_mask_from_ids(ids, eos_token_id=0)
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]


def test_engine_shapes_prompt_major_and_truncation():
    model, tokenizer = random_qwen3()
    enc = encode(tokenizer)
    engine = HFGenerateEngine(tokenizer)
    assert isinstance(engine, RolloutEngine)
    torch.manual_seed(0)
    out = engine.generate(model, enc["input_ids"], enc["attention_mask"],
                          SamplingSettings(num_samples=3, temperature=1.0, top_p=0.9,
                                           max_new_tokens=8))
    B, P = enc["input_ids"].shape
    assert out.sequences.shape[0] == B * 3 and out.prompt_length == P
    assert out.completion_ids.shape == out.completion_mask.shape == (B * 3, out.sequences.shape[1] - P)
    for row in range(B * 3):  # G consecutive rows share their prompt
        assert torch.equal(out.sequences[row, :P], enc["input_ids"][row // 3])
    lengths = out.completion_mask.sum(-1)
    ends_with_eos = out.completion_ids.gather(1, (lengths - 1)[:, None])[:, 0] == tokenizer.eos_token_id
    assert torch.equal(out.truncated, ~ends_with_eos)
    assert bool((lengths[out.truncated] == 8).all())
    pads = out.completion_ids[out.completion_mask == 0]
    assert bool((pads == tokenizer.pad_token_id).all())
    assert len(out.texts) == B * 3 and all(tokenizer.eos_token not in t for t in out.texts)


def test_greedy_is_deterministic():
    model, tokenizer = random_qwen3()
    enc = encode(tokenizer)
    engine = HFGenerateEngine(tokenizer)
    greedy = SamplingSettings(num_samples=2, temperature=0.0, max_new_tokens=6)
    a = engine.generate(model, enc["input_ids"], enc["attention_mask"], greedy)
    b = engine.generate(model, enc["input_ids"], enc["attention_mask"], greedy)
    assert torch.equal(a.sequences, b.sequences)
    assert torch.equal(a.sequences[0], a.sequences[1])


def greedy_with_logits():
    """A random model, 6 greedy tokens per prompt with generate's own logits, mask, prompt width."""
    model, tokenizer = random_qwen3()
    enc = encode(tokenizer)
    with torch.no_grad():
        gen = model.generate(**enc, do_sample=False, max_new_tokens=6, output_logits=True,
                             return_dict_in_generate=True, eos_token_id=-1,
                             pad_token_id=tokenizer.pad_token_id)
    mask = torch.cat([enc["attention_mask"], torch.ones(2, 6, dtype=torch.long)], 1)
    return model, gen, mask, enc["input_ids"].shape[1]


def test_logprobs_match_the_sampling_distribution():
    """Teacher-forced log-probs of left-padded rollouts equal generate's own step scores."""
    model, gen, mask, P = greedy_with_logits()
    logp, entropy = sequence_logprobs(model, gen.sequences, mask, P, with_entropy=True)
    expected = torch.log_softmax(torch.stack(gen.logits, 1).float(), -1)
    expected = expected.gather(-1, gen.sequences[:, P:, None])[..., 0]
    torch.testing.assert_close(logp, expected, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(entropy).all() and (entropy >= 0).all()


def test_logprobs_at_a_temperature_are_the_tempered_policy():
    """With ``temperature`` the log-probs are log_softmax(logits / T): the sampling policy."""
    model, gen, mask, P = greedy_with_logits()
    plain, _ = sequence_logprobs(model, gen.sequences, mask, P)
    tempered, _ = sequence_logprobs(model, gen.sequences, mask, P, temperature=0.6)
    expected = torch.log_softmax(torch.stack(gen.logits, 1).float() / 0.6, -1)
    expected = expected.gather(-1, gen.sequences[:, P:, None])[..., 0]
    torch.testing.assert_close(tempered, expected, atol=1e-5, rtol=1e-5)
    assert (tempered - plain).abs().max() > 1e-3  # greedy tokens get likelier when sharpened


def test_padding_never_gives_nonfinite_logprobs_or_grads():
    model, tokenizer = random_qwen3()
    enc = encode(tokenizer)
    out = HFGenerateEngine(tokenizer).generate(
        model, enc["input_ids"], enc["attention_mask"],
        SamplingSettings(num_samples=2, temperature=1.0, max_new_tokens=5))
    model.zero_grad()
    logp, _ = sequence_logprobs(model, out.sequences, out.attention_mask, out.prompt_length)
    assert torch.isfinite(logp).all()
    (logp * out.completion_mask).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
