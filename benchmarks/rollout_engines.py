"""Rollout throughput of the three engines: vllm vs kv_decode vs hf_generate, in one process.

Shapes (``--shape``):
  embedded    the embedded tiny-kk-student (~0.6M parameters) on real K&K prompts, 16 prompts x 8
              samples x up to 384 new tokens at temperature 0.6 (its traces end with EOS)
  realistic   a random-weight Qwen3 of ~48M parameters (hidden 512, 10 layers, 8 / 4 heads,
              head_dim 64, ffn 1536, vocab 32768, tied), 16 random prompts of 64 tokens x 8 x 512
  gpu         a random-weight Qwen3-0.6B shape (hidden 1024, 28 layers, 16 / 8 heads, head_dim
              128, ffn 3072, vocab 151936, tied) in bf16 on CUDA, 64 prompts x 8 x 2048

Random-weight models are built from a ``transformers.Qwen3Config`` (no download) and saved to a
temporary folder, which vLLM reads the config of. Every engine samples at the same temperature
and top-p from the same weights; the engines run interleaved (A B C A B C ...) for ``--rounds``
rounds after one untimed warm-up rollout each (8 new tokens). vLLM's one-off start (building the
``LLM``) and its in-memory weight sync before each rollout are timed apart from the rollout.
Tokens/s counts generated tokens (EOS included, padding excluded).

    OMP_NUM_THREADS=1 python benchmarks/rollout_engines.py --shape embedded
    OMP_NUM_THREADS=1 python benchmarks/rollout_engines.py --shape realistic --rounds 2
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


class IdTokenizer:
    """Decodes ids as space-separated numbers (random-weight models have no real tokenizer)."""

    eos_token_id, pad_token_id = 0, 1

    def batch_decode(self, rows, skip_special_tokens=False):
        return [" ".join(map(str, r)) for r in rows]


def build(shape: dict, folder: Path):
    """``(model, tokenizer, model_path, input_ids, attention_mask)``."""
    from transformers import AutoModelForCausalLM, Qwen3Config

    from rlad_pl.models import load_model, load_tokenizer
    from rlad_pl.models.loading import resolve_model_path

    device = shape.get("device", "cpu")
    if "config" not in shape:
        from rlad_pl.data import PromptDataModule

        tokenizer = load_tokenizer("tiny-kk-student")
        model = load_model("tiny-kk-student").eval().to(device)
        data = PromptDataModule(task="knights_knaves", tokenizer="tiny-kk-student",
                                task_kwargs={"people": [3]}, prompts_per_step=shape["prompts"],
                                train_size=256, val_size_per_subset=2, test_size_per_subset=2,
                                seed=0)
        data.setup("fit")
        batch = next(iter(data.train_dataloader()))
        return (model, tokenizer, resolve_model_path("tiny-kk-student"), batch["input_ids"],
                batch["attention_mask"])
    eos, pad = IdTokenizer.eos_token_id, IdTokenizer.pad_token_id
    config = Qwen3Config(**shape["config"], tie_word_embeddings=True, bos_token_id=None,
                         eos_token_id=eos, pad_token_id=pad, max_position_embeddings=8192)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=shape.get("dtype", torch.float32))
    model.save_pretrained(folder)
    model = model.eval().to(device)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(2, config.vocab_size, (shape["prompts"], shape["prompt_len"]),
                        generator=generator)
    return model, IdTokenizer(), str(folder), ids, torch.ones_like(ids)


def make_engine(name: str, tokenizer, model_path: str, shape: dict):
    from rlad_pl.rollout import HFGenerateEngine
    from rlad_pl.rollout.kv_decode import KVDecodeEngine

    if name == "kv_decode":
        return KVDecodeEngine(tokenizer)
    if name == "hf_generate":
        return HFGenerateEngine(tokenizer)
    from rlad_pl.rollout.vllm import VLLMEngine, VLLMOptions

    prompt_len = shape.get("prompt_len", 256)
    gib = 4.0 if shape.get("device") == "cuda" else 2.0
    return VLLMEngine(tokenizer, model_path, VLLMOptions(
        kv_cache_gib=gib, max_model_len=prompt_len + shape["max_new_tokens"],
        gpu_memory_utilization=0.5, enforce_eager=shape.get("device") != "cuda"))


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="embedded")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompts", type=int, help="override the shape's prompt count")
    parser.add_argument("--max-new-tokens", type=int, help="override the shape's limit")
    parser.add_argument("--out", help="append the markdown table to this file")
    args = parser.parse_args(argv)
    from rlad_pl.rollout import SamplingSettings
    shape = dict(SHAPES[args.shape])
    if args.prompts:
        shape["prompts"] = args.prompts
    if args.max_new_tokens:
        shape["max_new_tokens"] = args.max_new_tokens
    device = shape.get("device", "cpu")
    started = datetime.now(timezone.utc)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer, path, ids, mask = build(shape, Path(tmp))
        params = sum(p.numel() for p in model.parameters())
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
    lines = [
        f"### `{args.shape}` shape, {started:%Y-%m-%d %H:%M} UTC",
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
        "| engine | tokens per rollout | rollout s (median) | tokens/s | vs kv_decode |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in engines:
        ratio = f"{rate[name] / base:.2f}x" if base else "-"
        lines.append(f"| {name} | {statistics.median(tokens[name]):.0f} | "
                     f"{statistics.median(times[name]):.2f} | {rate[name]:.0f} | {ratio} |")
    lines += [""] + [f"- {k}: {v:.2f}" for k, v in extra.items()] + [""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
