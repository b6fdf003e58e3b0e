"""The verifier's wall-clock bound: adversarial inputs, threads, dataloader workers, crashes."""

import multiprocessing as mp
import os
import sys
import threading
import time

import pytest

from rlad_pl.tasks.math import check, verifier_stats, verify, warm_up
from rlad_pl.tasks.math.pool import VerifierPool

BOUND = 1.0
SLACK = 0.25  # scheduling on a loaded 2-core machine

ADVERSARIAL = [
    "9^9^9^9", "\\boxed{9^{9^{9^{9}}}}", "2^{2^{2^{2^{2^{2^{2}}}}}}", "(10^{64})^{64^{64}}",
    "x^{10^{100}}", "\\sqrt{2}^{10^{9}}", "10^{10000}!", "\\binom{10^{8}}{10^{4}}",
    "(" * 50_000 + "1" + ")" * 50_000, "\\sqrt{" * 3_000 + "2" + "}" * 3_000,
    "\\frac{" * 30_000 + "1", "\\boxed{" + "9" * 1_000_000 + "}", "7" * 1_000_000,
    "\\begin{pmatrix}" + "x&" * 3_000 + "x\\end{pmatrix}", "1e999999999", "\\boxed{1e-99999999}",
    "__import__('os').system('touch /tmp/rlad_pl_pwned')", "\\boxed{__import__('os').getpid()}",
    "exec(\"import os; os.system('id')\")", "().__class__.__mro__[1].__subclasses__()",
    "\\boxed{\\text{\\input{/etc/passwd}}}", "\uff19\uff3e\uff19\uff3e\uff19\uff3e\uff19",
    "\u0661\u0662\u0663", "\U0001d7cf\U0001d7ce", "1\u200b2", "\ufeff\x00\x01", "\u202e123",
    "x" * 200_000, "\\boxed{" * 20_000, "<answer>" * 20_000 + "</answer>",
]


@pytest.fixture(scope="module", autouse=True)
def _worker():
    assert warm_up()


def test_adversarial_within_bound():
    slow = []
    for text in ADVERSARIAL:
        start = time.monotonic()
        result = verify(text, "3")
        elapsed = time.monotonic() - start
        assert result is False
        if elapsed >= BOUND:
            slow.append((text[:30], round(elapsed, 3)))
    assert not slow


def _audited(queue, direct):
    """Run every adversarial input under an audit hook; `direct`: the symbolic checker itself
    in this process (what the worker runs), else `verify` (with its worker already up)."""
    from rlad_pl.tasks.math import symbolic

    if not direct:
        warm_up()
    events = []
    watched = ("exec", "compile", "os.system", "subprocess.Popen", "os.posix_spawn", "os.fork",
               "os.exec", "open", "import")
    sys.addaudithook(lambda event, args: events.append((event, str(args)[:60]))
                     if event in watched else None)
    times = []
    for text in ADVERSARIAL:
        start = time.monotonic()
        result = symbolic.equivalent(text, "3") if direct else verify(text, "3")
        times.append((round(time.monotonic() - start, 3), result))
    queue.put((times, events))


@pytest.mark.parametrize("direct", [False, True], ids=["verify", "symbolic-checker"])
def test_adversarial_inert(direct):
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_audited, args=(queue, direct))
    proc.start()
    try:
        times, events = queue.get(timeout=120)
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    assert [r for _, r in times] == [False] * len(ADVERSARIAL)
    # nothing compiled, executed, spawned, opened or imported while checking
    assert events == []
    assert not os.path.exists("/tmp/rlad_pl_pwned")
    if not direct:
        assert max(t for t, _ in times) < BOUND + SLACK


def test_threads_share_the_worker():
    pairs = [("\\boxed{2\\sqrt2}", "\\sqrt8", True), ("\\boxed{x+1}", "1+x", True),
             ("\\boxed{\\{3,1\\}}", "\\{1,3\\}", True), ("\\boxed{(1,2)}", "(2,1)", False),
             ("\\boxed{7}", "7", True), ("\\boxed{9^9^9^9}", "1", False)] * 4
    results, times = {}, {}

    def run(i, pred, gold):
        start = time.monotonic()
        results[i] = verify(pred, gold)
        times[i] = time.monotonic() - start

    threads = [threading.Thread(target=run, args=(i, p, g)) for i, (p, g, _) in enumerate(pairs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [results[i] for i in range(len(pairs))] == [e for _, _, e in pairs]
    assert max(times.values()) < BOUND + SLACK


class _Pairs:
    pairs = [("\\boxed{\\frac{\\sqrt3}{2}}", "\\frac{1}{2}\\sqrt{3}", True),
             ("\\boxed{3+4i}", "4i+3", True), ("\\boxed{x^2}", "y^2", False),
             ("\\boxed{5\\text{ cm}}", "5", True)]

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, i):
        pred, gold, _ = self.pairs[i]
        start = time.monotonic()
        return verify(pred, gold, timeout=5.0), time.monotonic() - start, os.getpid()


def test_dataloader_workers():
    """Forked, daemonic dataloader workers start their own verifier worker (Popen, not
    multiprocessing, which daemonic processes may not use)."""
    from torch.utils.data import DataLoader

    loader = DataLoader(_Pairs(), batch_size=None, num_workers=2)
    out = list(loader)
    assert [r for r, _, _ in out] == [e for _, _, e in _Pairs.pairs]
    assert {pid for _, _, pid in out} - {os.getpid()}  # really ran in worker processes


@pytest.fixture
def hooked_pool(monkeypatch):
    monkeypatch.setenv("RLAD_PL_VERIFIER_TEST_HOOKS", "1")
    pool = VerifierPool(size=1)
    assert pool.warm_up()
    yield pool
    pool.close()


def _timed(pool, extra=None, timeout=BOUND, pred="x+1", gold="1+x"):
    start = time.monotonic()
    out = pool.check([pred], gold, start + timeout, extra)
    return out, time.monotonic() - start


def test_overrun_is_killed_and_replaced(hooked_pool):
    (result, status), elapsed = _timed(hooked_pool, {"sleep": 30})
    assert (result, status) == (False, "timeout") and elapsed < BOUND + SLACK
    (result, status), elapsed = _timed(hooked_pool)  # the re-forked checker answers at once
    assert (result, status) == (True, "ok") and elapsed < BOUND


def test_checker_crash_is_survived(hooked_pool):
    (result, status), elapsed = _timed(hooked_pool, {"crash": True})
    assert (result, status) == (False, "crash") and elapsed < BOUND + SLACK
    assert _timed(hooked_pool)[0] == (True, "ok")


def test_hung_supervisor_cannot_hold_the_caller(hooked_pool):
    (result, status), elapsed = _timed(hooked_pool, {"hang_supervisor": 30})
    assert (result, status) == (False, "timeout") and elapsed < BOUND + SLACK
    assert hooked_pool.restarts == 1
    hooked_pool.warm_up()  # a new supervisor was started in the background
    assert _timed(hooked_pool)[0] == (True, "ok")


def test_killed_supervisor_is_replaced(hooked_pool):
    os.kill(hooked_pool.supervisors[0].proc.pid, 9)
    time.sleep(0.1)
    (result, _), elapsed = _timed(hooked_pool)
    assert result is False and elapsed < BOUND + SLACK
    hooked_pool.warm_up()
    assert _timed(hooked_pool)[0] == (True, "ok")


def test_timeouts_are_counted_as_wrong():
    before = verifier_stats()
    # a symbolic check cannot finish in 1 ms: it times out, counts, and is wrong
    verdict = check("\\boxed{(x+1)^{12}}", "x^{12}+12x^{11}+66x^{10}+1", timeout=0.001)
    assert verdict.correct is False and verdict.timed_out
    after = verifier_stats()
    assert after["timeouts"] == before["timeouts"] + 1
    assert after["calls"] == before["calls"] + 1
