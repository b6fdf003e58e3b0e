"""Verifier worker processes: symbolic checks with a wall-clock limit that always holds.

Layout: the calling process (any thread, a dataloader worker, a DDP rank) talks to a
*supervisor* process started with `subprocess.Popen` (not `multiprocessing`: that refuses to
start children from daemonic dataloader workers, and forking a multi-threaded trainer is
unsafe). The supervisor imports sympy once and forks a *checker* child that does the work.
Per request the supervisor waits at most the time left; when the checker overruns it is
SIGKILLed and a fresh one forked from the supervisor (milliseconds, sympy already imported);
a checker that crashes (segfault, out of memory under its address-space limit) is replaced the
same way. The caller itself waits with `select` on the pipe, so even a hung or dead supervisor
cannot hold a call past its deadline: the caller then kills the supervisor and starts another
in the background. No signals are used in the caller (no SIGALRM), so this works in any thread.

Wire format: 4-byte big-endian length + UTF-8 JSON, strings and numbers only (nothing is
unpickled or evaluated on either side).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

STARTUP_S = 60.0  # how long `warm_up(wait=True)` waits for a supervisor to import sympy
CALL_MARGIN_S = 0.03  # the caller stops waiting this long before its deadline (cleanup time)
SUPERVISOR_MARGIN_S = 0.15  # time the supervisor keeps to kill an overrunning checker and reply
CHECKER_MEMORY_BYTES = 2 << 30  # address space a checker may add on top of what it has
_HEADER = struct.Struct(">I")
_WARM_UP = (("x+1", "1+x"), ("(x+1)^2", "x^2+2x+1"), ("\\frac{\\sqrt3}{2}", "\\sin 60^\\circ"),
            ("\\{1,2\\}", "\\{2,1\\}"), ("(1,2]", "x \\in (1,2]"), ("3+4i", "4i+3"),
            ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "(1,2)"), ("y=2x", "2x=y"),
            ("\\cos^2 t-\\sin^2 t", "\\cos 2t"))
MAX_MESSAGE = 1 << 20
_TEST_HOOKS = os.environ.get("RLAD_PL_VERIFIER_TEST_HOOKS") == "1"


# ----------------------------------------------------------------------------- framing
def _write(fd: int, obj) -> None:
    data = json.dumps(obj).encode()
    data = _HEADER.pack(len(data)) + data
    while data:
        n = os.write(fd, data)
        data = data[n:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes | None:
    """n bytes from fd, or None on EOF / deadline."""
    chunks, got = [], 0
    while got < n:
        if deadline is not None:  # past the deadline: one look without waiting
            left = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
        chunk = os.read(fd, n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read(fd: int, deadline: float | None = None):
    header = _read_exact(fd, _HEADER.size, deadline)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_MESSAGE:
        return None
    body = _read_exact(fd, size, deadline)
    return None if body is None else json.loads(body)


# ------------------------------------------------------------------- worker side (child)
def _checker_loop(rfd: int, wfd: int) -> None:
    """Runs in the forked checker: answer requests until EOF."""
    try:
        import resource

        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[0])
        limit = pages * os.sysconf("SC_PAGE_SIZE") + CHECKER_MEMORY_BYTES
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError, ImportError):
        pass
    from .symbolic import equivalent_any

    while True:
        request = _read(rfd)
        if request is None:
            os._exit(0)
        if _TEST_HOOKS:  # only with RLAD_PL_VERIFIER_TEST_HOOKS=1 (tests of the bound)
            time.sleep(float(request.get("sleep", 0)))
            if request.get("crash"):
                os.kill(os.getpid(), signal.SIGSEGV)
        try:
            result = bool(equivalent_any(list(request["pred"]), str(request["gold"])))
            reply = {"id": request["id"], "status": "ok", "result": result}
        except MemoryError:
            reply = {"id": request["id"], "status": "memory", "result": False}
        except Exception as err:  # noqa: BLE001 - report, stay alive
            reply = {"id": request["id"], "status": "error", "result": False,
                     "error": type(err).__name__}
        _write(wfd, reply)


class _Checker:
    """The supervisor's handle on its forked checker."""

    def __init__(self):
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: drop the caller's pipes, so that they close with the supervisor
            os.close(self.to_child)
            os.close(self.from_child)
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(null, 1)
            try:
                _checker_loop(to_child_r, from_child_w)
            finally:
                os._exit(0)
        self.pid = pid
        os.close(to_child_r)
        os.close(from_child_w)

    def kill(self) -> None:
        for fd in (self.to_child, self.from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.kill(self.pid, 9)
        except OSError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except OSError:
            pass


def supervisor_main() -> None:
    """Main loop of the supervisor process (`python -m rlad_pl.tasks.math.supervisor`)."""
    rfd, wfd = sys.stdin.fileno(), sys.stdout.fileno()
    sys.stdout = sys.stderr  # nothing else may write on the reply pipe
    import sympy  # noqa: F401 - imported once here, inherited by every forked checker

    from . import symbolic

    for pred, gold in _WARM_UP:  # lazy imports and caches land in the forked checkers
        symbolic.equivalent(pred, gold)
    checker = _Checker()
    _write(wfd, {"ready": True, "pid": os.getpid()})
    while True:
        request = _read(rfd)
        if request is None:
            checker.kill()
            return
        if _TEST_HOOKS:
            time.sleep(float(request.get("hang_supervisor", 0)))
        limit = max(0.001, float(request.get("limit", 1.0)))
        deadline = time.monotonic() + limit
        try:
            _write(checker.to_child, request)
            reply = _read(checker.from_child, deadline)
        except OSError:
            reply = None
        if reply is None:
            overran = time.monotonic() >= deadline
            checker.kill()
            checker = _Checker()
            reply = {"id": request.get("id"), "status": "timeout" if overran else "crash",
                     "result": False}
        _write(wfd, reply)


# ------------------------------------------------------------------------ caller side
class _Supervisor:
    def __init__(self):
        root = str(Path(__file__).resolve().parents[3])
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                    else "")
        env.setdefault("OMP_NUM_THREADS", "1")
        env["RLAD_PL_VERIFIER_LAZY"] = "1"  # the supervisor itself never starts a supervisor
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rlad_pl.tasks.math.supervisor"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, close_fds=True,
            bufsize=0)
        self.wfd = self.proc.stdin.fileno()
        self.rfd = self.proc.stdout.fileno()
        self.ready = False
        self.lock = threading.Lock()
        self.next_id = 0

    def wait_ready(self, deadline: float) -> bool:
        if self.ready:
            return True
        hello = _read(self.rfd, deadline)
        if hello is None:
            if self.proc.poll() is not None:
                raise OSError("verifier supervisor exited")
            return False
        self.ready = bool(hello.get("ready"))
        return self.ready

    def poll_ready(self) -> bool:
        """Whether the hello has arrived (does not wait)."""
        try:
            return self.wait_ready(time.monotonic())
        except OSError:
            return False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


class VerifierPool:
    """Up to `size` supervisors shared by the threads of one process."""

    def __init__(self, size: int = 2):
        self.size = max(1, size)
        self.pid = os.getpid()
        self.supervisors: list[_Supervisor] = []
        self.lock = threading.Lock()
        self.restarts = 0
        self.ready_once = False  # a supervisor of this pool has been ready at least once

    def _spawn(self) -> _Supervisor:
        sup = _Supervisor()
        self.supervisors.append(sup)
        return sup

    def warm_up(self, wait: bool = True, timeout: float = STARTUP_S) -> bool:
        with self.lock:
            if not self.supervisors:
                self._spawn()
            sup = self.supervisors[0]
        if not wait:
            return sup.ready
        with sup.lock:
            try:
                ready = sup.wait_ready(time.monotonic() + timeout)
            except OSError:
                ready = False
            if not ready:  # a start that failed: try again with a fresh one next time
                self._replace(sup, locked=True)
            self.ready_once = self.ready_once or ready
        if ready:
            self._ensure_spare()
        return ready

    def _ensure_spare(self) -> None:
        """Keep `size` supervisors (a ready spare takes over at once when one is replaced)."""
        with self.lock:
            while len(self.supervisors) < self.size:
                self._spawn()

    def _acquire(self, deadline: float) -> _Supervisor | None:
        """A free, ready supervisor (locked), or None at the deadline. When all are busy and
        the pool may grow, one more is started in the background and used once it is ready."""
        while True:
            with self.lock:
                for sup in self.supervisors:
                    if sup.lock.acquire(blocking=False):
                        if sup.ready or sup.poll_ready():
                            return sup
                        sup.lock.release()
                if len(self.supervisors) < self.size and all(s.ready for s in self.supervisors):
                    self._spawn()
                ready = [s for s in self.supervisors if s.ready]
                waiting_on = ready[0] if ready else None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if waiting_on is None:
                time.sleep(min(left, 0.005))
            elif waiting_on.lock.acquire(timeout=min(left, 0.005)):
                return waiting_on

    def _replace(self, sup: _Supervisor, locked: bool = False) -> None:
        sup.kill()
        with self.lock:
            if sup in self.supervisors:
                self.supervisors.remove(sup)
            self.restarts += 1
            if not locked:
                while len(self.supervisors) < self.size:
                    self._spawn()  # start importing sympy now, in the background

    def check(self, preds: list[str], gold: str, deadline: float,
              extra: dict | None = None) -> tuple[bool, str]:
        """(result, status); status "ok", "timeout", "unavailable", "crash" or "error"."""
        if not self.ready_once:
            # the very first start of this process's checker (importing sympy, about a second)
            # is not charged to the call: the deadline starts once the checker is ready
            budget = deadline - time.monotonic()
            self.warm_up(wait=True)
            deadline = time.monotonic() + max(0.0, budget)
        sup = self._acquire(deadline)
        if sup is None:
            return False, "unavailable"
        try:
            if not sup.alive():
                self._replace(sup)
                return False, "crash"
            sup.next_id += 1
            # the checker gets a little less than what is left, so that its answer (or the
            # supervisor's timeout reply) arrives before our own deadline
            stop = deadline - min(CALL_MARGIN_S, (deadline - time.monotonic()) / 4)
            left = stop - time.monotonic()
            request = {**(extra or {}), "id": sup.next_id, "pred": preds, "gold": gold,
                       "limit": max(0.001, left - min(SUPERVISOR_MARGIN_S, left / 4))}
            try:
                _write(sup.wfd, request)
                reply = _read(sup.rfd, stop)
            except (OSError, ValueError):
                reply = None
            if reply is None or reply.get("id") != sup.next_id:
                self._replace(sup)
                return False, "timeout"
            return bool(reply.get("result")), str(reply.get("status", "error"))
        finally:
            sup.lock.release()

    def close(self) -> None:
        with self.lock:
            for sup in self.supervisors:
                sup.kill()
            self.supervisors = []


_POOL: VerifierPool | None = None
_POOL_LOCK = threading.Lock()


def get_pool() -> VerifierPool:
    """This process's pool (a forked child, e.g. a dataloader worker, gets its own)."""
    global _POOL
    pool = _POOL
    if pool is not None and pool.pid == os.getpid():
        return pool
    with _POOL_LOCK:
        if _POOL is None or _POOL.pid != os.getpid():
            _POOL = VerifierPool()  # the parent's pipes are never touched here
        return _POOL


def _close_at_exit() -> None:
    if _POOL is not None and _POOL.pid == os.getpid():
        _POOL.close()


atexit.register(_close_at_exit)
