"""Callbacks: unbiased pass@k, the teacher log-prob cache, HF export."""

import itertools
import math

import torch
from transformers import AutoModelForCausalLM

from rlad_pl.callbacks import HFExport, TeacherLogprobCache, pass_at_k
from rlad_pl.rollout import HFGenerateEngine, micro_batched_logprobs
from tests.test_module_fixtures import fit, random_qwen3, tiny_module


def test_pass_at_k_is_the_unbiased_estimator():
    n = 5
    for c, k in itertools.product(range(n + 1), range(1, n + 1)):
        # brute force: probability that a random k-subset of the n samples holds a correct one
        subsets = list(itertools.combinations([i < c for i in range(n)], k))
        expected = sum(any(s) for s in subsets) / len(subsets)
        got = float(pass_at_k(n, torch.tensor([c]), k)[0])
        assert math.isclose(got, expected, abs_tol=1e-6), (c, k)


def test_teacher_cache_dedups_and_serves_once():
    model, tokenizer = random_qwen3()
    enc = tokenizer(["A : B knight . ? <think>", "B : A knave . ? <think>"], return_tensors="pt",
                    padding=True, add_special_tokens=False)
    rollout = HFGenerateEngine(tokenizer).generate(
        model, enc["input_ids"], enc["attention_mask"], num_samples=4, max_new_tokens=5,
        temperature=0.0, top_p=1.0, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)  # greedy: 4 identical rows per prompt
    cache = TeacherLogprobCache()
    first = cache.logprobs(model, rollout, micro_batch_size=3)
    again = cache.logprobs(model, rollout, micro_batch_size=3)
    assert again is first and cache.calls == 1
    assert cache.last_hit_rate == 0.75  # 8 rows, 2 distinct sequences
    plain = micro_batched_logprobs(model, rollout.sequences, rollout.attention_mask,
                                   rollout.prompt_length, micro_batch_size=8)
    torch.testing.assert_close(first, plain, atol=1e-6, rtol=1e-6)


def test_hf_export_loads_and_generates(tmp_path):
    module = tiny_module(method="grpo", teacher=None)
    fit(module, max_steps=1, callbacks=[HFExport(str(tmp_path / "hf"))])
    assert (tmp_path / "hf" / "model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    for name, p in module.student.state_dict().items():
        assert torch.equal(model.state_dict()[name], p), name
    from rlad_pl.models import load_tokenizer

    tokenizer = load_tokenizer(str(tmp_path / "hf"))
    ids = tokenizer(["A : B knight . ? <think>"], return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]
