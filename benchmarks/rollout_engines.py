"""Rollout throughput and whole RLAD training steps of the three engines (vllm, kv_decode,
hf_generate), interleaved in one process.

Shapes (``--shape``):
  embedded    the embedded tiny-kk-student (~0.7M parameters; teacher tiny-kk-teacher) on real K&K
              prompts, 16 prompts x 8 samples x up to 384 new tokens at temperature 0.6 (its
              traces end with EOS)
  realistic   a random-weight Qwen3 of ~48M parameters (hidden 512, 10 layers, 8 / 4 heads,
              head_dim 64, ffn 1536, vocab 32768, tied), 16 prompts x 8 x 512 new tokens
  gpu         a random-weight Qwen3-0.6B shape (hidden 1024, 28 layers, 16 / 8 heads, head_dim
              128, ffn 3072, vocab 151936, tied) in bf16 on CUDA, 64 prompts x 8 x 2048
              (``--measure rollout`` only)

``--measure rollout`` (default) times ``engine.generate`` alone, on random prompts of
``prompt_len`` tokens for the random-weight shapes. Every engine samples at the same temperature
and top-p from the same weights; the engines run interleaved (A B C A B C ...) for ``--rounds``
rounds after one untimed warm-up rollout each (8 new tokens). vLLM's one-off start (building the
``LLM``) and its in-memory weight sync before each rollout are timed apart from the rollout.

``--measure step`` times whole training steps of ``RLADModule`` (TRRD, alpha 0.5) under a
Lightning Trainer: rollout (for vllm including its weight sync), scoring, the teacher's log-probs
and the update (one optimizer step over all 128 completions; zero-variance groups kept, so every
step updates on every completion). One module and one Trainer; before each step a callback hands
the module the next engine (A B C A B C ...), so every engine samples from the student as the
previous steps left it; round 0 (8 new tokens per engine) is an untimed warm-up. Prompts: one
batch of K&K puzzles (3 people), the same every step. The random-weight shapes use a teacher of
the student's shape (other random weights) and the embedded K&K tokenizer extended with filler
tokens to the model's vocabulary (so random ids decode; the K&K reward is then constant, and
with zero advantages the update still runs its full forward and backward).

Tokens/s counts generated tokens (EOS included, padding excluded). Random-weight models are built
from a ``transformers.Qwen3Config`` (no download) and saved to a temporary folder, which vLLM
reads the config of.

    OMP_NUM_THREADS=1 python benchmarks/rollout_engines.py --shape embedded
    OMP_NUM_THREADS=1 python benchmarks/rollout_engines.py --shape realistic --rounds 2
    OMP_NUM_THREADS=1 python benchmarks/rollout_engines.py --measure step --shape realistic --rounds 1
    python benchmarks/rollout_engines.py --shape gpu --engines vllm kv_decode   # on a GPU
Add ``--out benchmarks/results/rollout_engines.md`` to append the results table there.
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # threads fixed before torch is imported
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SHAPES = {
    "embedded": {"prompts": 16, "samples": 8, "max_new_tokens": 384, "temperature": 0.6},
    "realistic": {"prompts": 16, "samples": 8, "max_new_tokens": 512, "temperature": 1.0,
                  "prompt_len": 64,
                  "config": {"hidden_size": 512, "num_hidden_layers": 10, "num_attention_heads": 8,
                             "num_key_value_heads": 4, "head_dim": 64, "intermediate_size": 1536,
                             "vocab_size": 32768}},
    "gpu": {"prompts": 64, "samples": 8, "max_new_tokens": 2048, "temperature": 1.0,
            "prompt_len": 128, "dtype": torch.bfloat16, "device": "cuda",
            "config": {"hidden_size": 1024, "num_hidden_layers": 28, "num_attention_heads": 16,
                       "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 3072,
                       "vocab_size": 151936}},
}
ENGINES = ("vllm", "kv_decode", "hf_generate")
# --measure step: completions per forward/backward and per no-grad forward (the full-vocab fp32
# logits of 8 x 600 tokens x 32768 are ~0.6 GB)
STEP_MICRO_BATCH = {"embedded": (None, 64), "realistic": (8, 16)}


class IdTokenizer:
    """Decodes ids as space-separated numbers (random-weight models have no real tokenizer)."""

    eos_token_id, pad_token_id = 0, 1

    def batch_decode(self, rows, skip_special_tokens=False):
        return [" ".join(map(str, r)) for r in rows]


def random_qwen3(shape: dict, folder: Path, seed: int):
    """A random-weight Qwen3 of the shape's config (EOS 0, padding 1: the embedded tokenizer's
    ids), saved to ``folder``."""
    from transformers import AutoModelForCausalLM, Qwen3Config

    config = Qwen3Config(**shape["config"], tie_word_embeddings=True, bos_token_id=None,
                         eos_token_id=IdTokenizer.eos_token_id,
                         pad_token_id=IdTokenizer.pad_token_id, max_position_embeddings=8192)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=shape.get("dtype", torch.float32))
    model.save_pretrained(folder)
    return model


def kk_batch(tokenizer: str, prompts: int):
    """``(task, batch)``: the first training batch of 3-person K&K puzzles."""
    from rlad_pl.data import PromptDataModule

    data = PromptDataModule(task="knights_knaves", tokenizer=tokenizer,
                            task_kwargs={"people": [3]}, prompts_per_step=prompts,
                            train_size=256, val_size_per_subset=2, test_size_per_subset=2, seed=0)
    data.setup("fit")
    return data.task, next(iter(data.train_dataloader()))


def build(shape: dict, folder: Path):
    """``--measure rollout``: ``(model, tokenizer, model_path, input_ids, attention_mask)``."""
    from rlad_pl.models import load_model, load_tokenizer
    from rlad_pl.models.loading import resolve_model_path

    device = shape.get("device", "cpu")
    if "config" not in shape:
        _, batch = kk_batch("tiny-kk-student", shape["prompts"])
        return (load_model("tiny-kk-student").eval().to(device),
                load_tokenizer("tiny-kk-student"), resolve_model_path("tiny-kk-student"),
                batch["input_ids"], batch["attention_mask"])
    model = random_qwen3(shape, folder, seed=0).eval().to(device)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(2, model.config.vocab_size, (shape["prompts"], shape["prompt_len"]),
                        generator=generator)
    return model, IdTokenizer(), str(folder), ids, torch.ones_like(ids)


def step_models(shape: dict, folder: Path) -> tuple[str, str]:
    """``--measure step``: ``(student, teacher)`` paths or embedded names. Random-weight shapes
    get the embedded K&K tokenizer with filler tokens up to the model's vocabulary."""
    if "config" not in shape:
        return "tiny-kk-student", "tiny-kk-teacher"
    from rlad_pl.models import load_tokenizer

    tokenizer = load_tokenizer("tiny-kk-student")
    tokenizer.add_tokens([f"<filler{i}>" for i in range(len(tokenizer),
                                                        shape["config"]["vocab_size"])])
    paths = []
    for name, seed in (("student", 0), ("teacher", 1)):
        random_qwen3(shape, folder / name, seed)
        tokenizer.save_pretrained(folder / name)
        paths.append(str(folder / name))
    return paths[0], paths[1]


def vllm_options(shape: dict, prompt_len: int):
    from rlad_pl.rollout.vllm import VLLMOptions

    gib = 4.0 if shape.get("device") == "cuda" else 2.0
    return VLLMOptions(kv_cache_gib=gib, max_model_len=prompt_len + shape["max_new_tokens"],
                       gpu_memory_utilization=0.5, enforce_eager=shape.get("device") != "cuda")


def make_engine(name: str, tokenizer, model_path: str, shape: dict, prompt_len: int | None = None):
    from rlad_pl.rollout import HFGenerateEngine
    from rlad_pl.rollout.kv_decode import KVDecodeEngine

    if name == "kv_decode":
        return KVDecodeEngine(tokenizer)
    if name == "hf_generate":
        return HFGenerateEngine(tokenizer)
    from rlad_pl.rollout.vllm import VLLMEngine

    return VLLMEngine(tokenizer, model_path,
                      vllm_options(shape, prompt_len or shape.get("prompt_len", 256)))


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure_rollouts(args, shape: dict, folder: Path) -> tuple[int, list[str], dict]:
    """``(parameters, table lines, extra numbers)`` of ``--measure rollout``."""
    from rlad_pl.rollout import SamplingSettings

    device = shape.get("device", "cpu")
    model, tokenizer, path, ids, mask = build(shape, folder)
    ids, mask = ids.to(device), mask.to(device)
    sampling = SamplingSettings(num_samples=shape["samples"], temperature=shape["temperature"],
                                top_p=1.0, max_new_tokens=shape["max_new_tokens"])
    warm_up = replace(sampling, max_new_tokens=min(8, sampling.max_new_tokens))
    engines, extra = {}, {}
    for name in args.engines:
        engines[name] = make_engine(name, tokenizer, path, shape)
        if name == "vllm":
            start = time.perf_counter()
            engines[name].update_weights(model)
            extra["vllm start (build LLM + first sync) s"] = time.perf_counter() - start
    times = {name: [] for name in engines}
    tokens = {name: [] for name in engines}
    syncs = []
    for round_ in range(args.rounds + 1):  # round 0: a short warm-up rollout, untimed
        for name, engine in engines.items():
            torch.manual_seed(round_)
            if name == "vllm":
                sync(device)
                start = time.perf_counter()
                engine.update_weights(model)
                sync(device)
                if round_:
                    syncs.append(time.perf_counter() - start)
            sync(device)
            start = time.perf_counter()
            rollout = engine.generate(model, ids, mask, sampling if round_ else warm_up)
            sync(device)
            seconds = time.perf_counter() - start
            print(f"round {round_} {name}: {rollout.num_tokens} tokens in {seconds:.2f} s",
                  flush=True)
            if round_:
                times[name].append(seconds)
                tokens[name].append(rollout.num_tokens)
    if syncs:
        extra["vllm weight sync s (median)"] = statistics.median(syncs)
    rate = {n: statistics.median(t / s for t, s in zip(tokens[n], times[n], strict=True))
            for n in engines}
    base = rate.get("kv_decode")
    lines = ["| engine | tokens per rollout | rollout s (median) | tokens/s | vs kv_decode |",
             "| --- | --- | --- | --- | --- |"]
    for name in engines:
        ratio = f"{rate[name] / base:.2f}x" if base else "-"
        lines.append(f"| {name} | {statistics.median(tokens[name]):.0f} | "
                     f"{statistics.median(times[name]):.2f} | {rate[name]:.0f} | {ratio} |")
    return sum(p.numel() for p in model.parameters()), lines, extra


def measure_steps(args, shape: dict, folder: Path) -> tuple[int, list[str], dict]:
    """``(student parameters, table lines, extra numbers)`` of ``--measure step``."""
    from lightning.pytorch import Callback, LightningDataModule, Trainer

    from rlad_pl.models.loading import resolve_model_path
    from rlad_pl.module import EvaluationSettings, RLADModule
    from rlad_pl.objectives import TRRD
    from rlad_pl.optim import Optimization
    from rlad_pl.rollout import SamplingSettings

    student, teacher = step_models(shape, folder)
    sampling = SamplingSettings(num_samples=shape["samples"], temperature=shape["temperature"],
                                top_p=1.0, max_new_tokens=shape["max_new_tokens"])
    warm_up = replace(sampling, max_new_tokens=min(8, sampling.max_new_tokens))
    micro, logprob_micro = STEP_MICRO_BATCH[args.shape]
    module = RLADModule(student=student, teacher=teacher, objective=TRRD(alpha=0.5),
                        sampling=sampling, rollout_engine="kv_decode",
                        evaluation=EvaluationSettings(samples=0),  # no validation runs
                        drop_zero_variance_groups=False, micro_batch_size=micro,
                        logprob_micro_batch_size=logprob_micro,
                        optimization=Optimization(lr=1e-5))
    task, batch = kk_batch(student, shape["prompts"])
    prompt_len = batch["input_ids"].shape[1]
    engines = {name: make_engine(name, module.tokenizer, resolve_model_path(student), shape,
                                 prompt_len) for name in args.engines}
    order = list(engines)
    records = {name: [] for name in engines}
    extra, diffs = {}, []

    class Interleave(Callback):
        """Before each step: the next engine (and, in round 0, the warm-up token limit)."""

        def on_train_start(self, trainer, pl_module):
            if "vllm" in engines:
                start = time.perf_counter()
                engines["vllm"].update_weights(pl_module.student)
                extra["vllm start (build LLM + first sync) s"] = time.perf_counter() - start

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.round, index = divmod(batch_idx, len(order))
            self.name = order[index]
            pl_module.engine = engines[self.name]
            pl_module.engine_stale = True  # vllm: sync the student as the last steps left it
            pl_module.sampling = sampling if self.round else warm_up
            self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            wall = time.perf_counter() - self.start
            m = {k: float(v) for k, v in trainer.callback_metrics.items()
                 if k.startswith(("time/", "train/completion_len", "rollout/"))}
            phases = {k: m.get(f"time/{k}_s", 0.0) for k in ("step", "rollout", "teacher",
                                                              "update")}
            tokens = m["train/completion_len/mean"] * shape["prompts"] * shape["samples"]
            print(f"round {self.round} {self.name}: {tokens:.0f} tokens, wall {wall:.2f} s, "
                  + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()), flush=True)
            if self.round:
                records[self.name].append({**phases, "tokens": tokens, "wall": wall})
            if "rollout/logp_diff_max" in m:  # vllm: how far its log-probs are from the student's
                diffs.append(m["rollout/logp_diff_max"])

    class FixedBatch(LightningDataModule):
        def __init__(self):
            super().__init__()
            self.task = task

        def train_dataloader(self):
            return torch.utils.data.DataLoader(range(steps), batch_size=None,
                                               collate_fn=lambda _: batch)

    steps = (args.rounds + 1) * len(order)
    trainer = Trainer(accelerator="cpu", devices=1, max_steps=steps, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                      callbacks=[Interleave()])
    trainer.fit(module, datamodule=FixedBatch())

    def median(name, key):
        return statistics.median(r[key] for r in records[name])

    base = median("kv_decode", "step") if "kv_decode" in engines else None
    lines = ["| engine | rollout tokens | step s | rollout s | teacher s | update s | scoring + "
             "rest s | step wall s | rollout tokens/s | step speed vs kv_decode |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in engines:
        step, rollout = median(name, "step"), median(name, "rollout")
        teacher, update = median(name, "teacher"), median(name, "update")
        rate = statistics.median(r["tokens"] / r["rollout"] for r in records[name])
        rest = statistics.median(r["step"] - r["rollout"] - r["teacher"] - r["update"]
                                 for r in records[name])  # per step, so never below zero
        ratio = f"{base / step:.2f}x" if base else "-"
        lines.append(f"| {name} | {median(name, 'tokens'):.0f} | {step:.2f} | {rollout:.2f} | "
                     f"{teacher:.2f} | {update:.2f} | {rest:.2f} | "
                     f"{median(name, 'wall'):.2f} | {rate:.0f} | {ratio} |")
    if diffs:
        extra["vllm max |l_rollout - l_old| over its steps"] = max(diffs)
    teacher_params = sum(p.numel() for p in module.frozen["teacher"].parameters())
    extra["teacher parameters (M)"] = teacher_params / 1e6
    return sum(p.numel() for p in module.student.parameters()), lines, extra


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measure", choices=["rollout", "step"], default="rollout")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="embedded")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompts", type=int, help="override the shape's prompt count")
    parser.add_argument("--max-new-tokens", type=int, help="override the shape's limit")
    parser.add_argument("--out", help="append the markdown table to this file")
    args = parser.parse_args(argv)
    if args.measure == "step" and args.shape not in STEP_MICRO_BATCH:
        parser.error(f"--measure step: --shape {args.shape} is not supported "
                     f"(choose from {', '.join(STEP_MICRO_BATCH)})")
    shape = dict(SHAPES[args.shape])
    if args.prompts:
        shape["prompts"] = args.prompts
    if args.max_new_tokens:
        shape["max_new_tokens"] = args.max_new_tokens
    device = shape.get("device", "cpu")
    started = datetime.now(timezone.utc)
    load_before = os.getloadavg()[0]
    measure = measure_steps if args.measure == "step" else measure_rollouts
    with tempfile.TemporaryDirectory() as tmp:
        params, table, extra = measure(args, shape, Path(tmp))
    what = "whole RLAD training steps" if args.measure == "step" else "rollouts"
    lines = [
        f"### `{args.shape}` shape, {what}, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} python "
        f"benchmarks/rollout_engines.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        f"Machine: {platform.node()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, device {device}"
        + (f" ({torch.cuda.get_device_name()})" if device == "cuda" else "")
        + f"; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after.",
        f"Model: {params / 1e6:.1f}M parameters; {shape['prompts']} prompts x {shape['samples']}"
        f" samples x up to {shape['max_new_tokens']} new tokens, temperature "
        f"{shape['temperature']}, {args.rounds} timed rounds (median).",
        "",
        *table,
        "",
        *(f"- {k}: {v:.3g}" for k, v in extra.items()),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
