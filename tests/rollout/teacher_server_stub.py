"""A stand-in for vLLM's OpenAI-compatible server, for client tests that need no vLLM.

Answers ``GET /v1/models``, ``POST /tokenize`` and ``POST /v1/completions`` with
``prompt_logprobs`` (in vLLM's JSON layout) from a Hugging Face model on CPU, and can be told to
fail: ``fail_next`` requests answer HTTP 503, every scoring request after ``fail_after`` answered
ones answers 503, ``delay`` seconds pass before each scoring answer, ``token_offset`` shifts the
ids ``/tokenize`` returns (a tokenizer that differs), and the process dies (``os._exit``) on the
scoring request after ``exit_after`` answered ones (a server killed mid-run). Binds 127.0.0.1
only. ``python -m tests.rollout.teacher_server_stub MODEL [--port N] [--exit-after N]`` runs it in
its own process (prints ``PORT <n>`` once listening).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

from rlad_pl.models import load_model, load_tokenizer, resolve_model_path


class StubTeacherServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, model: str, *, served_name: str | None = None, tokenizer: str | None = None,
                 port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.root = resolve_model_path(model)
        self.served_name = served_name or self.root
        self.model = load_model(model).eval()
        self.tokenizer = load_tokenizer(tokenizer or model)
        self.fail_next = 0
        self.delay = 0.0
        self.token_offset = 0
        self.exit_after: int | None = None
        self.fail_after: int | None = None  # scoring requests answered before all get 503
        self.scoring_requests = 0
        self.lock = threading.Lock()

    def start(self) -> StubTeacherServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    @torch.no_grad()
    def prompt_logprobs(self, ids: list[int]) -> list:
        logits = self.model(input_ids=torch.tensor([ids])).logits[0].float()
        logp = logits.log_softmax(-1)
        out: list = [None]
        for position in range(1, len(ids)):
            token = ids[position]
            out.append({str(token): {"logprob": float(logp[position - 1, token]), "rank": 1,
                                     "decoded_token": self.tokenizer.decode([token])}})
        return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StubTeacherServer

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            pass

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            card = {"id": self.server.served_name, "object": "model", "root": self.server.root,
                    "max_model_len": 2048}
            self._send(200, {"object": "list", "data": [card]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        server = self.server
        with server.lock:
            failing = server.fail_next > 0
            server.fail_next -= failing
            failing |= (self.path == "/v1/completions" and server.fail_after is not None
                        and server.scoring_requests >= server.fail_after)
        if failing:
            self._send(503, {"error": {"message": "stub told to fail"}})
            return
        if body.get("model") != server.served_name:
            self._send(404, {"error": {"message": f"model {body.get('model')!r} not found"}})
        elif self.path == "/tokenize":
            ids = server.tokenizer.encode(body["prompt"],
                                          add_special_tokens=body.get("add_special_tokens", True))
            ids = [i + server.token_offset for i in ids]
            self._send(200, {"tokens": ids, "count": len(ids), "max_model_len": 2048})
        elif self.path == "/v1/completions":
            if server.exit_after is not None and server.scoring_requests >= server.exit_after:
                os._exit(1)
            time.sleep(server.delay)
            prompts = body["prompt"]
            if prompts and isinstance(prompts[0], int):
                prompts = [prompts]
            with server.lock:
                server.scoring_requests += 1
                choices = [{"index": i, "text": "", "prompt_logprobs": server.prompt_logprobs(p)}
                           for i, p in enumerate(prompts)]
            self._send(200, {"object": "text_completion", "choices": choices})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--exit-after", type=int, default=None)
    args = parser.parse_args()
    stub = StubTeacherServer(args.model, port=args.port)
    stub.exit_after = args.exit_after
    print(f"PORT {stub.server_address[1]}", flush=True)
    stub.serve_forever()
