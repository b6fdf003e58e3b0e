"""KVDecodeEngine: same logits as the plain forward at every step, same greedy output as HF
generate, the intended sampling distribution. Shared-prompt scoring: same log-probs and gradient as
the plain forward, each distinct prompt prefilled once per chunk."""

import pytest
import torch
from transformers import Qwen3Config, Qwen3ForCausalLM
from transformers.generation.logits_process import TopPLogitsWarper

from rlad_pl.rollout import (
    HFGenerateEngine,
    RolloutEngine,
    SamplingSettings,
    micro_batched_logprobs,
    sequence_logprobs,
)
from rlad_pl.rollout.kv_decode import KVDecodeEngine, nucleus_filter, sample_tokens
from rlad_pl.rollout.scoring import (
    distinct_prompts,
    run_chunks,
    scoring_chunks,
    shared_prompt_logprobs,
    shared_prompt_sequence_logprobs,
)

EOS, PAD, VOCAB = 0, 1, 32
# fp32 logits of the incremental (KV cache) and the full forward agree to rounding; observed
# max |diff| is 4.5e-6 on logits of magnitude up to 7.5.
ATOL, RTOL = 1e-4, 1e-5


class TextTokenizer:
    """Stand-in tokenizer: ids as space-separated text."""

    eos_token_id, pad_token_id = EOS, PAD

    def batch_decode(self, rows, skip_special_tokens=False):
        return [" ".join(map(str, row)) for row in rows]


class Recorder(torch.nn.Module):
    """Wraps a causal LM and keeps the last-position logits of every forward call."""

    def __init__(self, model):
        super().__init__()
        self.module, self.config, self.logits = model, model.config, []

    def forward(self, **kwargs):
        out = self.module(**kwargs)
        self.logits.append(out.logits[:, -1].float().clone())
        return out


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                         intermediate_size=128, initializer_range=0.2, eos_token_id=EOS,
                         pad_token_id=PAD, bos_token_id=None, tie_word_embeddings=True)
    return Qwen3ForCausalLM(config).eval()


def prompts(lengths=(3, 7, 5, 1), seed=1):
    """Left-padded prompts of varied lengths (no EOS/pad inside)."""
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.full((len(lengths), width), PAD)
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, width - n:] = torch.randint(2, VOCAB, (n,), generator=g)
        mask[row, width - n:] = 1
    return ids, mask


def run(engine, model, G, max_new_tokens, temperature, top_p=1.0, seed=0):
    ids, mask = prompts()
    torch.manual_seed(seed)
    return engine.generate(model, ids, mask, SamplingSettings(
        num_samples=G, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens))


def test_is_a_rollout_engine():
    assert isinstance(KVDecodeEngine(TextTokenizer()), RolloutEngine)


@pytest.mark.parametrize("G", [1, 3])
@pytest.mark.parametrize("compact_fraction", [1e-9, 2.0])  # drop finished rows at once / never
def test_step_logits_equal_full_forward(model, G, compact_fraction):
    recorder = Recorder(model)
    rollout = run(KVDecodeEngine(TextTokenizer(), compact_fraction), recorder, G,
                  max_new_tokens=24, temperature=1.0)
    assert rollout.truncated.any() and not rollout.truncated.all()  # both kinds of rows
    P, C = rollout.prompt_length, rollout.completion_ids.shape[1]
    steps = [recorder.logits[0].repeat_interleave(G, 0), *recorder.logits[1:]]
    assert len(steps) == C
    position_ids = (rollout.attention_mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        full = model(input_ids=rollout.sequences, attention_mask=rollout.attention_mask,
                     position_ids=position_ids).logits.float()
    for t, logits in enumerate(steps):
        alive = rollout.completion_mask[:, t].bool()  # rows that had not emitted EOS before t
        if compact_fraction < 1:  # the batch holds exactly the rows still generating
            assert len(logits) == int(alive.sum())
            logits = torch.zeros_like(full[:, 0]).index_put_((alive.nonzero().squeeze(1),),
                                                             logits)
        torch.testing.assert_close(logits[alive], full[alive, P - 1 + t], atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("G", [1, 3])
def test_dropping_finished_rows_changes_no_greedy_output(model, G):
    rollouts = [run(KVDecodeEngine(TextTokenizer(), f), model, G, max_new_tokens=24,
                    temperature=0.0) for f in (1e-9, 0.25, 2.0)]
    assert rollouts[0].truncated.any() and not rollouts[0].truncated.all()
    for other in rollouts[1:]:
        for field in ("sequences", "completion_mask", "attention_mask", "truncated"):
            assert torch.equal(getattr(other, field), getattr(rollouts[0], field)), field
    with pytest.raises(ValueError, match="compact_fraction must be > 0, got 0"):
        KVDecodeEngine(TextTokenizer(), 0)


def test_greedy_equals_hf_generate(model):
    ours = run(KVDecodeEngine(TextTokenizer()), model, 1, max_new_tokens=20, temperature=0.0)
    hf = run(HFGenerateEngine(TextTokenizer()), model, 1, max_new_tokens=20, temperature=0.0)
    assert ours.truncated.any() and not ours.truncated.all()
    assert ours.prompt_length == hf.prompt_length
    for field in ("sequences", "completion_ids", "completion_mask", "attention_mask", "truncated"):
        assert torch.equal(getattr(ours, field), getattr(hf, field)), field
    assert ours.texts == hf.texts
    # HF generate refuses greedy with several samples per prompt; here they are copies.
    twice = run(KVDecodeEngine(TextTokenizer()), model, 2, max_new_tokens=20, temperature=0.0)
    assert torch.equal(twice.sequences, ours.sequences.repeat_interleave(2, 0))


def test_rollout_fields_and_seed(model):
    a = run(KVDecodeEngine(TextTokenizer()), model, 4, max_new_tokens=16, temperature=1.0)
    b = run(KVDecodeEngine(TextTokenizer()), model, 4, max_new_tokens=16, temperature=1.0)
    assert torch.equal(a.sequences, b.sequences)  # same seed, same samples
    mask, ids = a.completion_mask.bool(), a.completion_ids
    assert a.sequences.shape == (16, a.prompt_length + ids.shape[1])
    assert torch.equal(a.truncated, ~(ids == EOS).any(-1))
    assert (ids[~mask] == PAD).all()
    ended = ~a.truncated
    lengths = mask.sum(-1)
    assert (ids[ended, lengths[ended] - 1] == EOS).all()  # the mask includes the first EOS
    assert a.texts[0] == " ".join(str(int(t)) for t in ids[0][mask[0]] if t != EOS)


@pytest.mark.parametrize("compact_fraction", [1e-9, 0.25, 2.0])
def test_finished_groups_are_reported_the_step_they_end(model, compact_fraction):
    """``on_group_done`` gets every prompt's group once, right after the forward that produced
    its last token (truncated groups when decoding ends), as the rollout's rows up to then; the
    rollout itself (same seed) is the one decoded without a listener."""
    G = 2
    recorder = Recorder(model)
    reports = []

    def on_group_done(group, sequences, attention_mask):
        reports.append((group, len(recorder.logits), sequences, attention_mask))

    engine = KVDecodeEngine(TextTokenizer(), compact_fraction)
    ids, mask = prompts()
    torch.manual_seed(2)  # a seed with a group that ends early for every compact_fraction
    rollout = engine.generate(recorder, ids, mask, SamplingSettings(
        num_samples=G, temperature=1.0, max_new_tokens=24), on_group_done=on_group_done)
    plain = run(KVDecodeEngine(TextTokenizer(), compact_fraction), model, G, max_new_tokens=24,
                temperature=1.0, seed=2)
    assert torch.equal(rollout.sequences, plain.sequences)
    ends = rollout.completion_mask.sum(-1).view(-1, G).max(-1).values  # tokens of the longest
    assert sorted(g for g, *_ in reports) == list(range(len(ids)))
    assert int(ends.min()) < 24 and rollout.truncated.any()  # one group ends early
    assert [forwards for _, forwards, *_ in reports] == sorted(ends.tolist())
    for group, forwards, sequences, attention_mask in reports:
        assert forwards == int(ends[group])  # reported right after its last token was drawn
        rows = slice(group * G, (group + 1) * G)
        width = sequences.shape[1]
        assert torch.equal(sequences, rollout.sequences[rows, :width])
        assert torch.equal(attention_mask, rollout.attention_mask[rows, :width])
        assert not rollout.attention_mask[rows, width:].any()  # only padding after it


@pytest.mark.parametrize("top_p", [0.3, 0.9, 0.99])
def test_nucleus_filter_matches_hf_top_p(top_p):
    torch.manual_seed(0)
    scores = torch.randn(64, 100) * 3
    expected = TopPLogitsWarper(top_p)(None, scores.clone())
    assert torch.equal(nucleus_filter(scores, top_p), expected)


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.5, 1.0), (0.7, 0.8)])
def test_sampler_distribution(temperature, top_p):
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])
    scores = logits / temperature
    if top_p < 1:
        scores = TopPLogitsWarper(top_p)(None, scores[None])[0]
    probs = scores.softmax(-1)
    n = 60_000
    torch.manual_seed(0)
    draws = sample_tokens(logits.expand(n, -1).clone(), temperature, top_p)
    counts = torch.bincount(draws, minlength=len(logits)).double()
    assert (counts[probs == 0] == 0).all()
    kept = probs > 0
    expected = n * probs[kept].double()
    chi2 = ((counts[kept] - expected) ** 2 / expected).sum()
    assert chi2 < 25.0  # chi-square, <= 5 dof: P(chi2 > 25) < 2e-4


def test_first_token_distribution_end_to_end(model):
    """Many samples of one prompt: the first token follows softmax(top_p(logits / T))."""
    G, temperature, top_p = 4000, 0.7, 0.9
    ids, mask = prompts(lengths=(5,))
    torch.manual_seed(0)
    rollout = KVDecodeEngine(TextTokenizer()).generate(
        model, ids, mask, SamplingSettings(num_samples=G, temperature=temperature, top_p=top_p,
                                           max_new_tokens=1))
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits[0, -1]
    probs = TopPLogitsWarper(top_p)(None, (logits / temperature)[None])[0].softmax(-1).double()
    counts = torch.bincount(rollout.completion_ids[:, 0], minlength=VOCAB).double()
    assert (counts[probs == 0] == 0).all()
    frequent = probs * G >= 20
    expected = G * probs[frequent]
    chi2 = ((counts[frequent] - expected) ** 2 / expected).sum()
    dof = int(frequent.sum())
    assert chi2 < dof + 6 * dof**0.5  # mean dof, sd sqrt(2 dof): a ~4-sigma bound


class CallRecorder(torch.nn.Module):
    """Wraps a causal LM and records ``(rows, tokens, prefill)`` of every forward call (a prefill
    is a call without a KV cache)."""

    def __init__(self, model):
        super().__init__()
        self.module, self.calls = model, []

    def forward(self, **kwargs):
        prefill = "cache" not in kwargs and "past_key_values" not in kwargs
        self.calls.append((*kwargs["input_ids"].shape, prefill))
        return self.module(**kwargs)

    def prefill_rows(self):
        return sum(rows for rows, _, prefill in self.calls if prefill)


# Rows of a rollout of 4 prompts x 4 samples (rows 4p..4p+3 share prompt p) as scored batches.
ROW_ORDERS = {
    "prompt-major": list(range(16)),  # 4 runs of 4
    "uneven": [0, 1, 2, 3, 4, 8, 9, 12, 13, 14, 5, 6, 3, 15],  # runs 4 1 2 3 2 1 1
    "shuffled": torch.randperm(16, generator=torch.Generator().manual_seed(0)).tolist(),
    "pad-as-token": [0, 0, 1, 1],  # row 1: prompt 0's padding attended as tokens
}
PROMPTS = {"prompt-major": 4, "uneven": 4, "shuffled": 4, "pad-as-token": 2}  # distinct (mask counts)


@pytest.fixture(scope="module")
def rollout(model):
    rollout = run(KVDecodeEngine(TextTokenizer()), model, 4, max_new_tokens=24, temperature=1.0)
    assert rollout.truncated.any() and not rollout.truncated.all()  # EOS and padding in some rows
    return rollout


def scored_batch(rollout, case):
    """``(sequences, attention_mask, completion_mask)`` of the rows ``ROW_ORDERS[case]``."""
    rows = torch.tensor(ROW_ORDERS[case])
    sequences, mask = rollout.sequences[rows], rollout.attention_mask[rows].clone()
    if case == "pad-as-token":
        mask[1, :rollout.prompt_length] = 1
    return sequences, mask, rollout.completion_mask[rows].bool()


def test_distinct_prompts_and_run_chunks():
    ids = torch.tensor([[1, 5], [1, 5], [1, 5], [2, 5], [1, 5], [1, 6]])
    mask = torch.ones_like(ids)
    mask[2, 0] = 0
    first, index = distinct_prompts(ids, mask, 2)
    assert index.tolist() == [0, 0, 1, 2, 0, 3]
    assert first.tolist() == [0, 2, 3, 5]
    assert distinct_prompts(ids, mask, 1)[1].tolist() == [0, 0, 1, 2, 0, 0]  # the mask counts too
    assert [t.tolist() for t in distinct_prompts(ids[:0], mask[:0], 2)] == [[], []]
    runs = torch.tensor([0, 0, 1, 1, 1, 1, 1, 2, 3])
    assert run_chunks(runs, 9) == [(0, 9)]
    assert run_chunks(runs, 3) == [(0, 2), (2, 5), (5, 8), (8, 9)]  # a long run is cut
    assert run_chunks(runs, 1) == [(i, i + 1) for i in range(9)]
    assert run_chunks(runs[:0], 3) == []


@pytest.mark.parametrize("case", list(ROW_ORDERS))
@pytest.mark.parametrize("micro_batch_size", [1, 3, 64])
def test_shared_prompt_logprobs_equal_plain_forward(model, rollout, case, micro_batch_size):
    sequences, mask, completion_mask = scored_batch(rollout, case)
    args = (sequences, mask, rollout.prompt_length)
    plain = micro_batched_logprobs(model, *args, micro_batch_size=64)
    shared = shared_prompt_logprobs(model, *args, micro_batch_size=micro_batch_size)
    assert shared.shape == plain.shape
    torch.testing.assert_close(shared[completion_mask], plain[completion_mask], atol=ATOL,
                               rtol=RTOL)


@pytest.mark.parametrize("case", list(PROMPTS))
def test_shared_prompt_logprobs_prefill_each_prompt_once_per_chunk(model, rollout, case):
    sequences, mask, _ = scored_batch(rollout, case)
    P = rollout.prompt_length
    recorder = CallRecorder(model)
    shared_prompt_logprobs(recorder, sequences, mask, P, micro_batch_size=64)
    assert recorder.prefill_rows() == PROMPTS[case]
    assert len(recorder.calls) == 2  # one chunk: the prefill and the completions
    recorder.calls.clear()
    shared_prompt_logprobs(recorder, sequences, mask, P, micro_batch_size=3)
    assert all(rows <= 3 for rows, _, _ in recorder.calls)
    _, prompt = distinct_prompts(sequences, mask, P)
    chunks = scoring_chunks(prompt, mask[:, P:].sum(-1), P, 3)
    assert recorder.prefill_rows() == sum(len(prompt[c].unique()) for c in chunks)


def test_scoring_chunks_take_the_plan_with_fewer_positions():
    prompt = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    same = torch.full((8,), 10)
    # Equal lengths: no padding either way, so each prompt's rows stay together.
    assert [c.tolist() for c in scoring_chunks(prompt, same, 50, 4)] == [[0, 1, 2, 3],
                                                                        [4, 5, 6, 7]]
    # One long completion per prompt, short prompt: grouping by length pads far less
    # (2 chunks x 2 prompts x 5 + 4 x 100 + 4 x 10 = 460 positions against 2 x (5 + 4 x 100)).
    lengths = torch.tensor([100, 10, 10, 10, 100, 10, 10, 10])
    assert [sorted(c.tolist()) for c in scoring_chunks(prompt, lengths, 5, 4)] == [
        [1, 2, 3, 5], [0, 4, 6, 7]]
    # The same lengths behind a long prompt: extra prefills cost more than the padding saved.
    assert [c.tolist() for c in scoring_chunks(prompt, lengths, 500, 4)] == [[0, 1, 2, 3],
                                                                            [4, 5, 6, 7]]
    # Rows of a prompt are brought together even when they are not consecutive.
    mixed = torch.tensor([0, 1, 0, 1])
    assert [c.tolist() for c in scoring_chunks(mixed, torch.full((4,), 3), 50, 2)] == [
        [0, 2], [1, 3]]


def test_shared_prompt_sequence_logprobs_same_gradient(model, rollout):
    sequences, mask, completion_mask = scored_batch(rollout, "uneven")
    args = (sequences, mask, rollout.prompt_length)
    weights = torch.randn(completion_mask.shape, generator=torch.Generator().manual_seed(0))
    results = []
    for score in (sequence_logprobs, shared_prompt_sequence_logprobs):
        model.zero_grad()
        logp, entropy = score(model, *args, with_entropy=True)
        (logp * weights * completion_mask).sum().backward()
        grads = [p.grad.clone() for p in model.parameters()]
        results.append((logp[completion_mask].detach(), entropy[completion_mask], grads))
    model.zero_grad()
    (plain_logp, plain_entropy, plain_grads), (logp, entropy, grads) = results
    torch.testing.assert_close(logp, plain_logp, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(entropy, plain_entropy, atol=ATOL, rtol=RTOL)
    for g, plain_g in zip(grads, plain_grads, strict=False):
        torch.testing.assert_close(g, plain_g, atol=1e-4, rtol=1e-4)
