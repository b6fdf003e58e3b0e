"""Teacher log-probs from an inference server (vLLM's OpenAI-compatible HTTP API).

TRRD needs only ``l_T``, the teacher's log-prob of each token the student sampled. A server
computes it for a whole sequence in one prefill: a ``/v1/completions`` request whose ``prompt`` is
the sequence's token ids, with ``max_tokens: 1`` and ``prompt_logprobs: 0``, answers with the
log-prob of every given token after the first. A large teacher can so live on its own GPUs or
nodes instead of beside the student in every training rank.

This module is a pure client (standard library only): :class:`RemoteTeacher` checks the server
before training (:meth:`RemoteTeacher.check`) and scores sequences with several requests in flight
(:meth:`RemoteTeacher.logprobs`); :meth:`RemoteTeacher.send` starts the requests of sequences
that are complete before the whole rollout is (overlap with generation). Scores are laid out
exactly as the local teacher pass lays them out (:func:`~rlad_pl.rollout.micro_batched_logprobs`):
``[N, C]`` float32, completion token ``t`` of a row in column ``t``, 0 past the row's completion.
The teacher runs at temperature 1.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import torch


def is_server_url(teacher: object) -> bool:
    """Whether a ``teacher`` setting names a server (``http://`` or ``https://``)."""
    return isinstance(teacher, str) and teacher.startswith(("http://", "https://"))


@dataclass
class TeacherServer:
    """How to talk to a teacher given as a server URL (``model.teacher: http://host:port``).

    Args:
        model: the served model name (the server's ``--served-model-name``, by default its
            ``--model`` argument); ``None``: the server's only model.
        tokenizer: the teacher's tokenizer (local folder, embedded name or cached HF id) for the
            full vocabulary check against the student's. ``None``: the server's model folder when
            it is readable from here (same machine or shared file system), else a probe through
            the server's ``/tokenize`` endpoint (special tokens, sample texts and a spread of
            single vocabulary tokens must encode to the student's ids).
        timeout: seconds one request may take (connect plus answer) before it is retried.
        connect_timeout: seconds of the reachability check before training.
        concurrency: requests in flight per rank.
        sequences_per_request: sequences sent in one request (the completions API takes a list of
            token-id prompts).
        retries: further attempts of a failed request (connection error, timeout, HTTP 5xx or
            429) before the run stops.
        retry_wait: seconds before the first retry, doubled at each further one.
        api_key_env: name of an environment variable holding the server's API key (vLLM's
            ``--api-key``); ``None``: no key is sent.
        overlap: with a rollout engine that reports finished prompt groups (``kv_decode``),
            send each group's sequences as soon as its completions are complete, while the rest
            of the rollout still decodes (same scores, earlier). Groups that the update later
            drops (equal rewards) are scored too when their requests started before the step
            asked for ``l_T``: turn it off when the server's load matters more than step time.
    """

    model: str | None = None
    tokenizer: str | None = None
    timeout: float = 120.0
    connect_timeout: float = 3.0
    concurrency: int = 8
    sequences_per_request: int = 8
    retries: int = 3
    retry_wait: float = 2.0
    api_key_env: str | None = None
    overlap: bool = True


class TeacherServerError(RuntimeError):
    """The teacher server failed to answer a scoring request (after the retries). ``checkpoint``
    is set by :class:`~rlad_pl.callbacks.TeacherLogprobCache` once it saved one."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(url, reason)
        self.url, self.reason = url, reason
        self.checkpoint: str | None = None

    def __str__(self) -> str:
        text = f"teacher server {self.url}: {self.reason}"
        if self.checkpoint:
            text += (f"; the run stopped after saving {self.checkpoint}: restart the server and "
                     f"resume with --ckpt_path {self._resume_argument()}")
        return text

    def _resume_argument(self) -> str:
        return "last" if Path(self.checkpoint).name == "last.ckpt" else self.checkpoint


class _Retryable(Exception):
    """A failure worth another attempt (connection, timeout, overloaded server)."""


class RemoteTeacher:
    """Client of a teacher server at ``url`` (vLLM's OpenAI-compatible API).

    One HTTP keep-alive connection per worker thread; ``options.concurrency`` threads keep that
    many requests in flight. Every failure is reported (:class:`TeacherServerError` or, from
    :meth:`check`, ``ValueError`` with a one-line message); nothing is filled in.
    """

    def __init__(self, url: str, options: TeacherServer | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url.rstrip("/")
        self.options = options or TeacherServer()
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._base_path = parts.path.rstrip("/")
        if self._base_path.endswith("/v1"):  # accept both http://host:port and .../v1
            self._base_path = self._base_path[:-3]
        self.model: str | None = self.options.model
        self.max_model_len: int | None = None
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        # sequences sent and not yet collected: token ids -> (request's future, index in it)
        self._sent: dict[tuple[int, ...], tuple[Future, int]] = {}
        self.requests_sent = 0
        self.retries_done = 0
        self.last_early_share = 0.0  # of the last logprobs call's sequences, answered before it

    # ------------------------------------------------------------------------------- HTTP
    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = (http.client.HTTPSConnection if self._scheme == "https"
                   else http.client.HTTPConnection)
            conn = cls(self._host, self._port, timeout=timeout)
            self._local.conn = conn
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _request_once(self, method: str, path: str, body: dict | None, timeout: float):
        """One HTTP exchange; ``(status, parsed JSON or text)``. Connection-level failures raise
        :class:`_Retryable`."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.options.api_key_env:
            headers["Authorization"] = f"Bearer {os.environ.get(self.options.api_key_env, '')}"
        try:
            conn = self._connection(timeout)
            conn.request(method, self._base_path + path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as err:  # refused, reset, timeout, ...
            self._drop_connection()
            kind = "timed out" if isinstance(err, TimeoutError) else "connection failed"
            raise _Retryable(f"{method} {path} {kind} ({type(err).__name__}: {err})") from None
        if response.getheader("Connection", "").lower() == "close":
            self._drop_connection()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw[:200].decode(errors="replace")
        return response.status, payload

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        """A request with the timeout and bounded retries; the parsed JSON answer."""
        opts = self.options
        wait = opts.retry_wait
        for attempt in range(opts.retries + 1):
            try:
                status, payload = self._request_once(method, path, body, opts.timeout)
                if status == 429 or status >= 500:
                    raise _Retryable(f"{method} {path} answered HTTP {status}: "
                                     f"{_error_text(payload)}")
            except _Retryable as err:
                if attempt == opts.retries:
                    raise TeacherServerError(
                        self.url, f"{err}; gave up after {opts.retries + 1} attempts") from None
                self.retries_done += 1
                time.sleep(wait)
                wait *= 2
                continue
            if status != 200 or not isinstance(payload, dict):
                raise TeacherServerError(self.url, f"{method} {path} answered HTTP {status}: "
                                                   f"{_error_text(payload)}")
            return payload
        raise AssertionError("unreachable")

    # ---------------------------------------------------------------------- before training
    def check(self, student_tokenizer) -> None:
        """Before training: the server answers within ``connect_timeout``, serves
        ``options.model`` (or exactly one model, which is then used) and tokenizes like
        ``student_tokenizer``. Raises ``ValueError`` with a one-line reason."""
        try:
            status, payload = self._request_once("GET", "/v1/models", None,
                                                 self.options.connect_timeout)
        except _Retryable as err:
            raise ValueError(f"server not reachable ({err})") from None
        finally:
            self._drop_connection()
        if status != 200 or not isinstance(payload, dict) or not isinstance(
                payload.get("data"), list):
            raise ValueError(f"GET /v1/models answered HTTP {status}: {_error_text(payload)} "
                             "(is this a vLLM / OpenAI-compatible server?)")
        cards = {str(card.get("id")): card for card in payload["data"] if isinstance(card, dict)}
        if self.model is None:
            if len(cards) != 1:
                raise ValueError(f"the server serves {sorted(cards)}; name one in "
                                 "model.init_args.teacher_server.model")
            self.model = next(iter(cards))
        elif self.model not in cards:
            raise ValueError(f"the server does not serve model {self.model!r} "
                             f"(model.init_args.teacher_server.model); it serves {sorted(cards)}")
        card = cards[self.model]
        if isinstance(card.get("max_model_len"), int):
            self.max_model_len = card["max_model_len"]
        self._check_tokenizer(student_tokenizer, card)

    def _check_tokenizer(self, student_tokenizer, card: dict) -> None:
        from rlad_pl.models.loading import check_tokenizers_compatible, load_tokenizer

        path = self.options.tokenizer
        if path is None:
            root = card.get("root")
            files = ("tokenizer.json", "tokenizer_config.json")
            if isinstance(root, str) and any((Path(root) / f).is_file() for f in files):
                path = root
        if path is not None:
            try:
                teacher_tokenizer = load_tokenizer(path)
            except Exception as err:  # noqa: BLE001 - any loading failure is a config problem
                raise ValueError(f"cannot load the teacher tokenizer {path!r} "
                                 f"({type(err).__name__}: {err})") from None
            check_tokenizers_compatible(student_tokenizer, teacher_tokenizer)
            return
        self._probe_tokenizer(student_tokenizer)

    def _probe_tokenizer(self, student_tokenizer, spread: int = 512) -> None:
        """Compare the server's ``/tokenize`` with the student's encoding on special tokens, a
        few texts and ``spread`` single vocabulary tokens spread over the vocabulary."""
        vocab = student_tokenizer.get_vocab()
        texts = [t for t in (student_tokenizer.eos_token, student_tokenizer.bos_token,
                             student_tokenizer.pad_token) if t]
        texts += ["Knights always tell the truth and knaves always lie.",
                  "Alice says: 'Bob is a knave.' 1 + 23 = 24; x^2 - 4 = 0",
                  "  indented\n\ttab, unicode: caf\u00e9 \u6f22\u5b57 \u2192 \U0001f600"]
        size = len(vocab)
        ids = sorted({round(i * (size - 1) / max(spread - 1, 1)) for i in range(spread)})
        for i in ids:
            text = student_tokenizer.decode([i])
            if text and student_tokenizer.encode(text, add_special_tokens=False) == [i]:
                texts.append(text)  # only tokens whose text round-trips identify the token

        def compare(text: str) -> str | None:
            answer = self._request("POST", "/tokenize", {"model": self.model, "prompt": text,
                                                         "add_special_tokens": False})
            theirs = answer.get("tokens")
            ours = student_tokenizer.encode(text, add_special_tokens=False)
            return None if theirs == ours else f"{text!r} -> {theirs} (server) != {ours} (student)"

        try:
            with ThreadPoolExecutor(self.options.concurrency) as pool:
                problems = [p for p in pool.map(compare, texts) if p]
        except TeacherServerError as err:
            raise ValueError(f"tokenizer probe failed ({err.reason}); give the teacher's "
                             "tokenizer in model.init_args.teacher_server.tokenizer") from None
        if problems:
            raise ValueError(f"the server tokenizes differently from the student on "
                             f"{len(problems)} of {len(texts)} probe texts, e.g. {problems[0]}")

    # ----------------------------------------------------------------------------- scoring
    def send(self, sequences: torch.Tensor, attention_mask: torch.Tensor) -> None:
        """Start scoring these rows (padding dropped) on the worker threads and return at once;
        the next :meth:`logprobs` call collects the answers. Sequences sent before are skipped."""
        seq, mask = sequences.cpu(), attention_mask.cpu().bool()
        self._send([tuple(seq[r][mask[r]].tolist()) for r in range(seq.shape[0])])

    def _send(self, sequences: list[tuple[int, ...]]) -> None:
        new = [ids for ids in dict.fromkeys(sequences) if ids not in self._sent]
        k = max(self.options.sequences_per_request, 1)
        if new and self._pool is None:
            self._pool = ThreadPoolExecutor(max(self.options.concurrency, 1),
                                            thread_name_prefix="teacher-http")
        for begin in range(0, len(new), k):
            batch = new[begin:begin + k]
            future = self._pool.submit(self._score_batch, batch)
            for index, ids in enumerate(batch):
                self._sent[ids] = (future, index)

    def logprobs(self, sequences: torch.Tensor, attention_mask: torch.Tensor,
                 prompt_length: int) -> torch.Tensor:
        """``[N, C]`` teacher log-probs of the completion tokens (columns ``prompt_length:``)
        at temperature 1; 0 where the attention mask is 0. Each distinct row is sent once,
        without its padding (positions then start at 0 on its first real token, as in the local
        pass); rows already :meth:`send`-ed are not sent again, and sent sequences these rows do
        not need are forgotten (their requests cancelled unless running)."""
        P = prompt_length
        N, C = sequences.shape[0], sequences.shape[1] - P
        out = torch.zeros(N, C, dtype=torch.float32)
        seq, mask = sequences.cpu(), attention_mask.cpu().bool()
        jobs = []  # (row, token ids, real prompt length, completion columns)
        for r in range(N):
            columns = mask[r, P:].nonzero().flatten()
            if len(columns) == 0:
                continue
            n_prompt = int(mask[r, :P].sum())
            if n_prompt == 0:
                raise ValueError(f"row {r} has an empty prompt: its first completion token has "
                                 "no teacher log-prob")
            jobs.append((r, tuple(seq[r][mask[r]].tolist()), n_prompt, columns))
        distinct = dict.fromkeys(ids for _, ids, _, _ in jobs)
        early = sum(ids in self._sent and self._sent[ids][0].done() for ids in distinct)
        self.last_early_share = early / max(len(distinct), 1)
        try:
            self._send(list(distinct))
            for r, ids, n_prompt, columns in jobs:
                future, index = self._sent[ids]
                logp = future.result()[index]  # re-raises the request's failure
                out[r, columns] = torch.tensor(logp[n_prompt:n_prompt + len(columns)],
                                               dtype=torch.float32)
        finally:
            self.forget()
        return out.to(sequences.device)

    def forget(self) -> None:
        """Drop the sequences sent and not collected; their requests are cancelled unless they
        are running already (a running one ends in the background, its answer unused)."""
        for future in {future for future, _ in self._sent.values()}:
            future.cancel()
        self._sent.clear()

    def _score_batch(self, prompts: list[tuple[int, ...]]) -> list[list[float]]:
        """Per sequence of token ids, the log-prob of each token after the first (index 0 holds
        nan)."""
        body = {"model": self.model, "prompt": prompts, "max_tokens": 1, "temperature": 1.0,
                "prompt_logprobs": 0, "add_special_tokens": False}
        self.requests_sent += 1
        answer = self._request("POST", "/v1/completions", body)
        choices = answer.get("choices")
        if not isinstance(choices, list) or len(choices) != len(prompts):
            raise TeacherServerError(self.url, f"/v1/completions answered {_error_text(answer)} "
                                               f"instead of {len(prompts)} choices")
        by_index = {c.get("index", i): c for i, c in enumerate(choices) if isinstance(c, dict)}
        return [self._parse(by_index.get(i), ids) for i, ids in enumerate(prompts)]

    def _parse(self, choice: dict | None, ids: list[int]) -> list[float]:
        entries = choice.get("prompt_logprobs") if isinstance(choice, dict) else None
        if not isinstance(entries, list) or len(entries) != len(ids):
            raise TeacherServerError(self.url, "/v1/completions returned no prompt_logprobs for "
                                               f"a {len(ids)}-token sequence (vLLM needed)")
        values = [math.nan]
        for position in range(1, len(ids)):
            entry = entries[position]
            item = entry.get(str(ids[position])) if isinstance(entry, dict) else None
            value = item.get("logprob") if isinstance(item, dict) else None
            if not isinstance(value, (int, float)) or math.isnan(value) or value > 1e-3:
                raise TeacherServerError(self.url, f"no valid log-prob for token {ids[position]} "
                                                   f"at position {position}: {entry!r:.120}")
            values.append(float(value))
        return values

    def close(self) -> None:
        self.forget()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._drop_connection()


def _error_text(payload) -> str:
    """A short, single-line rendering of an error answer."""
    if isinstance(payload, dict):
        err = payload.get("error", payload)
        payload = err.get("message", err) if isinstance(err, dict) else err
    return " ".join(str(payload).split())[:200]
