"""Throughput of rlad-pl's GRPO / RLAD / KDRL steps side by side with TRL, on CPU.

Same shapes for every system: Qwen3 policy (hidden 128, 2 layers, 4 heads / 2 kv, head_dim 32,
ffn 384, tied) and teacher (hidden 256, 4 layers, 8 / 4 heads, head_dim 32, ffn 768, tied), built
from config with random weights and the embedded K&K tokenizer; 16 K&K prompts x 8 completions x
up to 64 new tokens, fp32, a fixed thread count. The systems run interleaved (A B C ... A B C ...)
in one process; each round builds every system afresh from the same saved weights and times
``--steps`` optimizer steps, the first of which is dropped as warm-up.

rlad-pl runs its own RL LightningModule (``RLADModule.training_step``) under a Lightning Trainer;
TRL runs ``GRPOTrainer`` (defaults; and "tuned" = gradient checkpointing off) and
``DistillationTrainer`` (on-policy distillation from the teacher). Rewards are a deterministic hash
of the completion text in [0, 1) for every system, so every group has reward variance and every
step updates on all completions (random weights never solve a puzzle).

    OMP_NUM_THREADS=1 python benchmarks/throughput.py            # ~5 min on 2 shared cores
    python benchmarks/throughput.py --rounds 1 --steps 2 --systems rlad-grpo trl-grpo   # smoke
"""

from __future__ import annotations

import argparse
import os
import sys

# Threads must be fixed before torch is imported: an unpinned process stalls on a shared machine.
if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import json
import platform
import statistics
import tempfile
import threading
import time
import warnings
import zlib
from datetime import datetime, timezone
from pathlib import Path

import torch

POLICY = {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
          "num_key_value_heads": 2, "head_dim": 32, "intermediate_size": 384}
TEACHER = {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 8,
           "num_key_value_heads": 4, "head_dim": 32, "intermediate_size": 768}
RLAD_SYSTEMS = {  # name: (method, rollout_engine, teacher cache shares prompts)
    "rlad-grpo": ("grpo", "kv_decode", True),
    "rlad-grpo-hf": ("grpo", "hf_generate", True),
    "rlad-rlad": ("rlad", "kv_decode", True),
    "rlad-rlad-plain-teacher": ("rlad", "kv_decode", False),
    "rlad-kdrl": ("kdrl", "kv_decode", True),
}
TRL_SYSTEMS = ("trl-grpo", "trl-grpo-tuned", "trl-distill")
SYSTEMS = (*RLAD_SYSTEMS, *TRL_SYSTEMS)
LABELS = {
    "rlad-grpo": "rlad-pl GRPO (KVDecodeEngine)",
    "rlad-grpo-hf": "rlad-pl GRPO (HFGenerateEngine)",
    "rlad-rlad": "rlad-pl RLAD alpha=0.5 (KVDecodeEngine)",
    "rlad-rlad-plain-teacher": "rlad-pl RLAD alpha=0.5 (KVDecodeEngine, plain teacher pass)",
    "rlad-kdrl": "rlad-pl KDRL (KVDecodeEngine)",
    "trl-grpo": "TRL GRPOTrainer, defaults",
    "trl-grpo-tuned": "TRL GRPOTrainer, gradient checkpointing off",
    "trl-distill": "TRL DistillationTrainer (teacher), defaults",
}
# (system, reference, target ratio) from the issue.
TARGETS = [
    ("rlad-grpo", "trl-grpo", 0.75),
    ("rlad-grpo", "trl-grpo-tuned", 0.95),
    ("rlad-rlad", "trl-distill", 0.6),
    ("rlad-rlad", "rlad-grpo", 1.5),
]


def hash_reward(text: str) -> float:
    """Deterministic pseudo-random reward in [0, 1) (identical for every system)."""
    return zlib.crc32(text.encode()) / 2**32


# --------------------------------------------------------------------------- setup
def build_models(tokenizer, folder: Path, seed: int) -> dict[str, str]:
    """Random-weight policy and teacher saved (with the tokenizer) under ``folder``."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    paths = {}
    for name, shape in (("policy", POLICY), ("teacher", TEACHER)):
        config = Qwen3Config(vocab_size=len(tokenizer), tie_word_embeddings=True,
                             eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
                             max_position_embeddings=512, **shape)
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        paths[name] = str(folder / name)
        model.save_pretrained(paths[name])
        tokenizer.save_pretrained(paths[name])
    return paths


def build_prompts(count: int) -> tuple[list[dict], list[str]]:
    """``count`` K&K puzzles, levels 2..8 in turn (prompt lengths vary within the batch)."""
    from rlad_pl.tasks import get_task
    from rlad_pl.tasks.knights_knaves import generate_puzzles

    task = get_task("knights_knaves")
    records = [generate_puzzles(2 + i % 7, 1, seed=1000 + i)[0] for i in range(count)]
    return records, [task.prompt(r) for r in records]


class RSSMonitor:
    """Samples the process's resident set size; ``peak()`` since the last ``reset()``."""

    def __init__(self, interval: float = 0.05) -> None:
        import psutil

        self._process, self._interval, self._peak = psutil.Process(), interval, 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            self._peak = max(self._peak, self._process.memory_info().rss)
            time.sleep(self._interval)

    def reset(self) -> None:
        self._peak = self._process.memory_info().rss

    def peak(self) -> int:
        return max(self._peak, self._process.memory_info().rss)


# --------------------------------------------------------------------------- rlad-pl
def run_rlad(system: str, ctx: dict, steps: int) -> list[dict]:
    """``steps`` training steps of the RL module under a Lightning Trainer; per-step records."""
    from lightning.pytorch import Callback, LightningDataModule, Trainer

    from rlad_pl.callbacks.teacher_cache import TeacherLogprobCache
    from rlad_pl.data.collate import PromptCollator
    from rlad_pl.module import RLADModule
    from rlad_pl.objectives import GRPO, TRRD
    from rlad_pl.optim import Optimization
    from rlad_pl.rollout import SamplingSettings
    from rlad_pl.tasks.base import Task

    class HashRewardTask(Task):
        name = "hash-reward"

        def prompt(self, record, tokenizer=None):
            return record["prompt"]

        def score(self, completion, record):
            r = hash_reward(completion)
            return {"total": r, "correct": r > 0.5}

        def subset(self, record):
            return "all"

    class FixedPrompts(LightningDataModule):
        def __init__(self, batch):
            super().__init__()
            self.task, self.batch = HashRewardTask(), batch

        def train_dataloader(self):
            return torch.utils.data.DataLoader(range(steps + 1), batch_size=None,
                                               collate_fn=lambda _: self.batch)

    class StepTimer(Callback):
        def __init__(self):
            self.records, self.last = [], None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.last = self.last or time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            now, m = time.perf_counter(), trainer.callback_metrics
            tokens = float(m["train/completion_len/mean"]) * ctx["group_size"] * ctx["prompts"]
            self.records.append({
                "seconds": now - self.last, "tokens": tokens,
                "rollout": float(m["time/rollout_s"]),
                "teacher": float(m["time/teacher_s"]) if "time/teacher_s" in m else 0.0,
                "update": float(m["time/update_s"]),
            })
            self.last = now

    method, engine, share_prompts = RLAD_SYSTEMS[system]
    module = RLADModule(
        student=ctx["paths"]["policy"],
        teacher=ctx["paths"]["teacher"] if method != "grpo" else None,
        objective=GRPO() if method == "grpo" else TRRD(),
        sampling=SamplingSettings(num_samples=ctx["group_size"], temperature=1.0,
                                  max_new_tokens=ctx["max_new_tokens"]),
        optimization=Optimization(lr=1e-4), seed=ctx["seed"], rollout_engine=engine)
    collate = PromptCollator(module.tokenizer)
    batch = collate([{"prompt": p} for p in ctx["prompt_texts"]], ctx["prompt_texts"])
    timer = StepTimer()
    trainer = Trainer(accelerator="cpu", devices=1, max_steps=steps, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                      callbacks=[timer, *([] if share_prompts
                                          else [TeacherLogprobCache(share_prompts=False)])])
    trainer.fit(module, datamodule=FixedPrompts(batch))
    return timer.records


# --------------------------------------------------------------------------- TRL
def run_trl(system: str, ctx: dict, steps: int) -> list[dict]:
    """``steps`` optimizer steps of a TRL trainer; per-step records from a TrainerCallback."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback

    from rlad_pl.rollout import completion_mask_from_ids

    tokenizer, eos = ctx["tokenizer"], ctx["tokenizer"].eos_token_id
    phase = {"rollout": 0.0, "teacher": 0.0, "tokens": 0}

    def timed_generate(generate):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            out = generate(*args, **kwargs)
            phase["rollout"] += time.perf_counter() - start
            completion = out[:, kwargs["input_ids"].shape[1]:]
            phase["tokens"] += int(completion_mask_from_ids(completion, eos).sum())
            return out
        return wrapper

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.records, self.last = [], None

        def on_step_begin(self, args, state, control, **kwargs):
            self.last = self.last or time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            now = time.perf_counter()
            seconds = now - self.last
            self.records.append({
                "seconds": seconds, "tokens": phase["tokens"], "rollout": phase["rollout"],
                "teacher": phase["teacher"],
                "update": seconds - phase["rollout"] - phase["teacher"]})
            phase.update(rollout=0.0, teacher=0.0, tokens=0)
            self.last = now

    policy = AutoModelForCausalLM.from_pretrained(ctx["paths"]["policy"], dtype=torch.float32)
    policy.generate = timed_generate(policy.generate)
    common = {"output_dir": ctx["tmp"], "max_steps": steps, "learning_rate": 1e-4,
              "use_cpu": True, "bf16": False, "report_to": "none", "save_strategy": "no",
              "disable_tqdm": True, "seed": ctx["seed"],
              "max_completion_length": ctx["max_new_tokens"], "temperature": 1.0, "top_p": 1.0,
              "dataloader_num_workers": 0}
    n = ctx["group_size"] * ctx["prompts"]
    timer = StepTimer()
    if system.startswith("trl-grpo"):
        from trl import GRPOConfig, GRPOTrainer

        def reward(completions, **kwargs):
            return [hash_reward(c) for c in completions]

        extra = {"gradient_checkpointing": False} if system == "trl-grpo-tuned" else {}
        args = GRPOConfig(per_device_train_batch_size=n, num_generations=ctx["group_size"],
                          **common, **extra)
        trainer = GRPOTrainer(model=policy, reward_funcs=reward, args=args,
                              train_dataset=Dataset.from_dict({"prompt": ctx["prompt_texts"]}),
                              processing_class=tokenizer, callbacks=[timer])
    else:
        from trl import DistillationConfig, DistillationTrainer

        teacher = AutoModelForCausalLM.from_pretrained(ctx["paths"]["teacher"],
                                                       dtype=torch.float32)
        args = DistillationConfig(per_device_train_batch_size=n, **common)
        # One completion per prompt row: each prompt appears G times per batch, as in GRPO.
        prompts = [p for p in ctx["prompt_texts"] for _ in range(ctx["group_size"])]
        trainer = DistillationTrainer(model=policy, teacher_model=teacher, args=args,
                                      train_dataset=Dataset.from_dict({"prompt": prompts}),
                                      processing_class=tokenizer, callbacks=[timer])
        hidden = trainer._get_last_hidden_state

        def timed_hidden(model, *args, **kwargs):
            start = time.perf_counter()
            out = hidden(model, *args, **kwargs)
            if model is trainer.teacher_model or model is teacher:
                phase["teacher"] += time.perf_counter() - start
            return out
        trainer._get_last_hidden_state = timed_hidden
    trainer.train()
    return timer.records


# --------------------------------------------------------------------------- report
def summarize(samples: dict[str, list[dict]], peaks: dict[str, int]) -> dict:
    out = {}
    for system, recs in samples.items():
        if not recs:
            continue
        seconds = [r["seconds"] for r in recs]
        med = statistics.median(seconds)
        tokens = statistics.median(r["tokens"] for r in recs)
        out[system] = {
            "label": LABELS[system],
            "median_s_per_step": med,
            "min_s_per_step": min(seconds),
            "max_s_per_step": max(seconds),
            "steps_timed": len(seconds),
            "generated_tokens_per_step": tokens,
            "generated_tokens_per_s": tokens / med,
            "phase_median_s": {k: statistics.median(r[k] for r in recs)
                               for k in ("rollout", "teacher", "update")},
            "peak_rss_mb": peaks[system] / 2**20,
            "step_seconds": seconds,
        }
    return out


def ratios(summary: dict, rounds: list[dict[str, float]]) -> list[dict]:
    """Ratio of the medians, and the median of the per-round ratios (paired: the load on a shared
    machine drifts between rounds much more than within one)."""
    rows = []
    for system, reference, target in TARGETS:
        if system in summary and reference in summary:
            r = summary[system]["median_s_per_step"] / summary[reference]["median_s_per_step"]
            paired = statistics.median(rd[system] / rd[reference] for rd in rounds)
            rows.append({"system": system, "reference": reference, "ratio": r,
                         "paired_ratio": paired, "target": target,
                         "met": max(r, paired) <= target})
    return rows


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    import lightning
    import transformers

    info = {"cpu": cpu, "logical_cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "lightning": lightning.__version__,
            "torch_threads": torch.get_num_threads(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    try:
        import trl

        info["trl"] = trl.__version__
    except ImportError:
        pass
    return info


def write_markdown(path: Path, result: dict) -> None:
    s, m = result["systems"], result["machine"]
    lines = [
        "# Throughput: rlad-pl vs TRL (CPU)", "",
        f"Command: `{result['command']}`  ", f"Date: {result['date']}  ",
        (f"Machine: {m['cpu']}, {m['logical_cores']} logical cores, {m['platform']}; torch "
        f"{m['torch']}, transformers {m['transformers']}, lightning {m['lightning']}, "
        f"trl {m.get('trl', '-')}; {m['torch_threads']} torch thread(s), "
        f"OMP_NUM_THREADS={m['OMP_NUM_THREADS']}  "),
        f"Setup: {result['setup']}  ",
        f"Contention: {result['contention']}", "",
        ("| system | median s/step | min-max | gen. tokens/step | gen. tokens/s | rollout s "
        "| teacher s | update s | peak RSS MB |"),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for v in s.values():
        p = v["phase_median_s"]
        lines.append(
            f"| {v['label']} | {v['median_s_per_step']:.3f} | {v['min_s_per_step']:.2f}-"
            f"{v['max_s_per_step']:.2f} | {v['generated_tokens_per_step']:.0f} | "
            f"{v['generated_tokens_per_s']:.0f} | {p['rollout']:.3f} | {p['teacher']:.3f} | "
            f"{p['update']:.3f} | {v['peak_rss_mb']:.0f} |")
    lines += ["", ("| ratio of s/step | ratio of medians | median of per-round ratios | target "
              "| met (both) |"), "|---|---|---|---|---|"]
    for r in result["ratios"]:
        lines.append(f"| {r['system']} / {r['reference']} | {r['ratio']:.2f} | "
                     f"{r['paired_ratio']:.2f} | <= {r['target']} | "
                     f"{'yes' if r['met'] else 'no'} |")
    lines += ["", *result["notes"], ""]
    path.write_text("\n".join(lines))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--steps", type=int, default=3,
                        help="optimizer steps per system and round (the first is warm-up)")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")),
                        help="torch threads (default: OMP_NUM_THREADS, which defaults to 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    from rlad_pl.models import load_tokenizer

    tokenizer = load_tokenizer("tiny-kk-student")
    tmp = tempfile.TemporaryDirectory()
    ctx = {"tokenizer": tokenizer, "prompts": args.prompts, "group_size": args.group_size,
           "max_new_tokens": args.max_new_tokens, "seed": args.seed, "tmp": tmp.name}
    ctx["paths"] = build_models(tokenizer, Path(tmp.name), args.seed)
    _, ctx["prompt_texts"] = build_prompts(args.prompts)
    from transformers import AutoModelForCausalLM

    params = {name: sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(path).parameters())
              for name, path in ctx["paths"].items()}
    monitor = RSSMonitor()
    samples = {s: [] for s in args.systems}
    rounds = []
    peaks = {s: 0 for s in args.systems}
    load_before = os.getloadavg()
    started = time.perf_counter()
    for round_ in range(args.rounds):
        rounds.append({})
        for system in args.systems:
            monitor.reset()
            run = run_rlad if system in RLAD_SYSTEMS else run_trl
            records = run(system, ctx, args.steps)
            assert torch.get_num_threads() == args.threads, "thread count changed"
            peaks[system] = max(peaks[system], monitor.peak())
            samples[system] += records[1:]
            rounds[-1][system] = statistics.median(r["seconds"] for r in records[1:])
            timed = [round(r["seconds"], 3) for r in records]
            print(f"round {round_} {system}: s/step {timed} (first dropped)", flush=True)
    wall = time.perf_counter() - started
    summary = summarize(samples, peaks)
    result = {
        "command": " ".join(["OMP_NUM_THREADS=" + os.environ["OMP_NUM_THREADS"], "python",
                             *sys.argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "setup": (f"{args.prompts} prompts x {args.group_size} completions x up to "
                  f"{args.max_new_tokens} new tokens, fp32; policy {params['policy']:,} params, "
                  f"teacher {params['teacher']:,} params (vocab {len(tokenizer)}); "
                  f"{args.rounds} interleaved rounds x {args.steps} steps, first step of each "
                  f"round dropped; wall {wall:.0f} s"),
        "contention": (f"load average (1/5/15 min) {load_before[0]:.2f}/{load_before[1]:.2f}/"
                       f"{load_before[2]:.2f} at start, "
                       f"{'/'.join(f'{x:.2f}' for x in os.getloadavg())} at end, on "
                       f"{os.cpu_count()} cores shared with other jobs; absolute times move with "
                       "the load, ratios within a round much less"),
        "systems": summary,
        "ratios": ratios(summary, rounds),
        "round_medians_s": rounds,
        "notes": NOTES,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(args.out / "throughput.md", result)
    print((args.out / "throughput.md").read_text())


NOTES = [
    "Notes:",
    ("- Profile of HF `generate` alone (cProfile, this policy, 16 prompts x 8 samples x 64 tokens,"
     " 1 thread, 0.60 s): model forwards 0.42 s (linear layers 0.17, attention 0.08, KV-cache"
     " `torch.cat` 0.04, causal-mask building 0.02), of which the prefill of all 128 rows (every"
     " prompt 8 times) 0.11 s; `torch.multinomial` 0.15 s (2.3 ms per call on a 128 x 1094"
     " matrix); generate's own Python (logits processors, stopping criteria, input preparation)"
     " about 0.03 s. `KVDecodeEngine` prefills each prompt once, repeats its cache, and samples"
     " by inverse CDF (0.13 ms per call): 0.30 s for the same rollout. With top-p < 1, HF's"
     " top-p warper adds a `torch.sort` (6 ms per call on CPU); the engine sorts with numpy."),
    ("- The update (policy forward + backward over 128 x ~126 tokens) and the teacher forward are"
     " compute bound (torch profiler: matrix multiplies 53% / 75% of their time, attention 12%)."
     " The teacher forward costs 1.5-2x the policy's forward+backward here (3.15M vs 0.39M"
     " non-embedding parameters), so RLAD <= 1.5x GRPO needs the teacher to see fewer tokens:"
     " the teacher cache's shared-prompt pass runs 16 x 62 prompt + 128 x 63 completion tokens"
     " instead of 128 x 126 (fewer where dedup finds identical completions)."),
    ("- Every system: same saved random weights, same 16 prompts (K&K, 2..8 people, left padded),"
    " temperature 1, top-p 1, no top-k, stop at EOS (id of `<|endoftext|>`), at most 64 new"
    " tokens, no minimum length; AdamW lr 1e-4, grad clip 1.0; rewards = hash of the completion"
    " text. Generated tokens are counted per step (EOS included, padding excluded): rlad-pl from"
    " its completion mask, TRL by wrapping the policy's `generate`; equal counts confirm equal"
    " generation work."),
    ("- rlad-pl: `RLADModule.training_step` under a Lightning Trainer (one rollout, one optimizer"
    " step on all 128 completions), `rollout_engine=kv_decode` except in the HFGenerateEngine"
    " row, module defaults otherwise. The teacher log-probs come from the default"
    " `TeacherLogprobCache`: identical sequences once, then each prompt prefilled once and its KV"
    " cache shared by its distinct completions (`rlad_pl.rollout.shared_prompt_logprobs`, tested"
    " equal to the plain forward). 'plain teacher pass' sets `share_prompts=False`: the distinct"
    " sequences run in full, prompt included, as before. Phases are the module's own `time/*_s`"
    " metrics. TRL: a"
    " TrainerCallback timestamps step ends; rollout = time inside `generate`, teacher = the"
    " teacher backbone forward (DistillationTrainer), update = the rest of the step."),
    ("- TRL GRPOTrainer: per_device_train_batch_size 128, num_generations 8 (16 prompts per"
    " step), beta 0 (no reference model, as in rlad-pl GRPO), TRL defaults otherwise (loss dapo,"
    " gradient checkpointing on); 'tuned' turns gradient checkpointing off. TRL"
    " DistillationTrainer: each prompt 8 times in a 128-row batch, one completion per row,"
    " defaults otherwise (generalized JSD with beta 1 over the full vocabulary, gradient"
    " checkpointing on). bf16 is off for TRL (fp32, as rlad-pl) and use_cpu is on."),
]


if __name__ == "__main__":
    main()
