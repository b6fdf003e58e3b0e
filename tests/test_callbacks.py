"""Callbacks: the teacher log-prob cache, HF export."""

import torch
from transformers import AutoModelForCausalLM

from rlad_pl.callbacks import HFExport, TeacherLogprobCache
from rlad_pl.objectives import GRPO
from rlad_pl.rollout import HFGenerateEngine, SamplingSettings, micro_batched_logprobs
from rlad_pl.rollout.scoring import first_occurrences
from tests.test_kv_decode import CallRecorder
from tests.test_module_fixtures import fit, random_qwen3, tiny_module


def test_first_occurrences_keep_row_order():
    sequences = torch.tensor([[3, 1], [1, 2], [3, 1], [0, 0], [1, 2], [5, 5]])
    rows, inverse = first_occurrences(sequences)
    assert rows.tolist() == [0, 1, 3, 5]
    assert inverse.tolist() == [0, 1, 0, 2, 1, 3]
    assert [len(t) for t in first_occurrences(sequences[:0])] == [0, 0]


def kk_rollout(temperature, num_samples=4, max_new_tokens=5):
    """A rollout of the random Qwen3 on two K&K-like prompts of different lengths."""
    model, tokenizer = random_qwen3()
    enc = tokenizer(["A : B knight . ? <think>", "B : A knave , C knight . ? <think>"],
                    return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(0)
    return model, HFGenerateEngine(tokenizer).generate(
        model, enc["input_ids"], enc["attention_mask"],
        SamplingSettings(num_samples=num_samples, temperature=temperature,
                         max_new_tokens=max_new_tokens))


def assert_same_teacher_logprobs(cached, rollout, model):
    plain = micro_batched_logprobs(model, rollout.sequences, rollout.attention_mask,
                                   rollout.prompt_length, micro_batch_size=8)
    mask = rollout.completion_mask.bool()
    # The shared-prompt pass differs from full forwards by fp32 rounding only (observed 5e-7).
    torch.testing.assert_close(cached[mask], plain[mask], atol=1e-5, rtol=1e-5)


def test_teacher_cache_dedups_and_serves_once():
    model, rollout = kk_rollout(temperature=0.0)  # greedy: 4 identical rows per prompt
    cache = TeacherLogprobCache()
    first = cache.logprobs(model, rollout, micro_batch_size=3)
    again = cache.logprobs(model, rollout, micro_batch_size=3)
    assert again is first and cache.calls == 1
    assert cache.last_hit_rate == 0.75  # 8 rows, 2 distinct sequences
    assert_same_teacher_logprobs(first, rollout, model)


def test_teacher_cache_prefills_each_prompt_once():
    model, sampled = kk_rollout(temperature=1.0, max_new_tokens=8)
    assert len(torch.unique(sampled.sequences, dim=0)) == 8  # distinct samples
    # Duplicates as greedy-ish sampling would give them: 12 rows, 8 distinct.
    rollout = sampled.select(torch.tensor([0, 0, 1, 2, 3, 3, 4, 5, 6, 7, 7, 7]))
    P, width = rollout.prompt_length, int(rollout.completion_mask.sum(-1).max())
    for share_prompts in (True, False):
        teacher = CallRecorder(model)
        cache = TeacherLogprobCache(share_prompts=share_prompts)
        l_T = cache.logprobs(teacher, rollout, micro_batch_size=64)
        assert cache.last_hit_rate == 1 - 8 / 12
        if share_prompts:  # the 2 prompts once each, then the 8 distinct completions on them
            assert teacher.calls == [(2, P, True), (8, width - 1, False)]
        else:  # 8 full sequences
            assert teacher.calls == [(8, P + width, True)]
        assert_same_teacher_logprobs(l_T, rollout, model)


def test_hf_export_loads_and_generates(tmp_path):
    module = tiny_module(GRPO(), teacher=None)
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
