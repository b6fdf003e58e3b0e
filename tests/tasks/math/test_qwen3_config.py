"""configs/math-qwen3.yaml end to end through the `rlad-pl` CLI, offline: Qwen3-shaped random
models (a tiny Qwen3Config saved with save_pretrained), a tokenizer with a Qwen3-style chat
template (`enable_thinking`), and local benchmark files as the README describes them (training
from Parquet, MATH-500 / AIME / AMC converted with `--subset`). Only paths, the accelerator and
sizes are overridden."""

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util.tensor_util import make_ndarray

from rlad_pl.cli import main
from rlad_pl.tasks.math.benchmarks import main as convert

CONFIG = str(Path(__file__).resolve().parents[3] / "configs" / "math-qwen3.yaml")

# Qwen3's chat template reduced to what the prompt uses (written here): ChatML turns, and an
# empty think block when `enable_thinking` is false.
QWEN3_STYLE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}")


def save_qwen3_shaped(folder: Path, seed: int) -> None:
    """A random-weight Qwen3ForCausalLM and a Qwen3-like tokenizer (ChatML specials, eos
    <|im_end|>) built from the embedded byte-level BPE."""
    from transformers import AutoTokenizer, GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    from rlad_pl.models import EMBEDDED_DIR

    tok = AutoTokenizer.from_pretrained(EMBEDDED_DIR / "tiny-tokenizer")
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.eos_token = "<|im_end|>"
    tok.chat_template = QWEN3_STYLE
    torch.manual_seed(seed)
    config = Qwen3Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         head_dim=16, max_position_embeddings=512, tie_word_embeddings=True,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id,
                                               pad_token_id=tok.pad_token_id)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)


@pytest.fixture(scope="module")
def local_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("qwen3")
    save_qwen3_shaped(root / "models" / "student", seed=0)
    save_qwen3_shaped(root / "models" / "teacher", seed=1)
    raw = root / "raw"
    raw.mkdir()
    pq.write_table(pa.Table.from_pylist(
        [{"problem": f"What is {i}+{i}?", "solution": f"So $\\boxed{{{2 * i}}}$.",
          "level": "Level 1", "type": "Prealgebra"} for i in range(6)]), raw / "math_train.parquet")
    pq.write_table(pa.Table.from_pylist(
        [{"problem": f"Half of {2 * i}?", "solution": f"\\boxed{{{i}}}", "answer": str(i),
          "subject": "Algebra", "level": 2, "unique_id": f"test/{i}.json"} for i in range(3)]),
        raw / "math500.parquet")
    pq.write_table(pa.Table.from_pylist(
        [{"ID": f"2024-I-{i}", "Problem": f"AIME {i}", "Solution": "", "Answer": 100 + i}
         for i in range(2)]), raw / "aime_2024.parquet")
    (raw / "amc.jsonl").write_text("".join(
        json.dumps({"id": i, "problem": f"AMC {i}", "answer": 10.0 + i, "url": "u"}) + "\n"
        for i in range(2)))
    data = root / "data" / "math"
    for source, target, subset in (("math500.parquet", "val/math500.jsonl", "math500"),
                                   ("aime_2024.parquet", "test/aime2024.jsonl", "aime2024"),
                                   ("amc.jsonl", "test/amc.jsonl", "amc")):
        convert([str(raw / source), str(data / target), "--subset", subset])
    return root


def overrides(root: Path) -> list[str]:
    models, data = root / "models", root / "data" / "math"
    return ["--trainer.accelerator", "cpu", "--trainer.max_steps", "2",
            "--trainer.val_check_interval", "2", "--trainer.enable_progress_bar", "false",
            "--model.init_args.student", str(models / "student"),
            "--model.init_args.teacher", str(models / "teacher"),
            "--data.init_args.tokenizer", str(models / "student"),
            "--data.init_args.train_files", str(root / "raw" / "math_train.parquet"),
            "--data.init_args.val_files", str(data / "val"),
            "--data.init_args.test_files", str(data / "test"),
            "--model.init_args.sampling.num_samples", "2",
            "--model.init_args.sampling.max_new_tokens", "6",
            "--model.init_args.evaluation.samples", "1",
            "--model.init_args.evaluation.max_new_tokens", "6",
            "--model.init_args.micro_batch_size", "2",
            "--model.init_args.logprob_micro_batch_size", "2",
            "--data.init_args.prompts_per_step", "2", "--data.init_args.val_prompts_per_step", "2"]


def logged(run: Path) -> tuple[set[str], str]:
    """Scalar tags and the sample texts of a run."""
    events = EventAccumulator(str(run))
    events.Reload()
    texts = "".join(make_ndarray(e.tensor_proto).item().decode()
                    for tag in events.Tags()["tensors"] for e in events.Tensors(tag))
    return set(events.Tags()["scalars"]), texts


@pytest.mark.parametrize("thinking", [False, True])
def test_math_qwen3_config_fits_and_tests_offline(local_files, tmp_path, monkeypatch, thinking):
    monkeypatch.chdir(tmp_path)
    args = [*overrides(local_files), "--data.init_args.task_kwargs.enable_thinking",
            str(thinking).lower()]
    main(["fit", "--config", CONFIG, *args])
    run = tmp_path / "runs" / "math-qwen3" / "version_0"
    tags, samples = logged(run)
    assert {"train/reward/mean", "train/reward/verifier_timeouts", "val/accuracy/mean"} <= tags
    # train and val prompts: the tokenizer's chat template over question + boxed instruction
    # (SampleLogger indents the prompt by 4 spaces)
    for question in (r"What is \d\+\d\?", r"Half of \d\?"):
        assert re.search(r"<\|im_start\|>user\n    " + question + r"\n    \n    Please reason "
                         r"step by step, and put your final answer within \\boxed\{\}\."
                         r"<\|im_end\|>\n    <\|im_start\|>assistant\n", samples), question
    empty_think = "    <|im_start|>assistant\n    <think>\n    \n    </think>\n"
    assert (empty_think in samples) is (not thinking)
    if thinking:
        return
    main(["test", "--config", CONFIG, *args,
          "--ckpt_path", str(tmp_path / "runs" / "math-qwen3" / "checkpoints" / "last.ckpt")])
    test_tags, _ = logged(tmp_path / "runs" / "math-qwen3" / "version_1")
    assert {"test/accuracy/aime2024", "test/accuracy/amc", "test/accuracy/mean"} <= test_tags
