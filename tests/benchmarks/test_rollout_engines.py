"""benchmarks/rollout_engines.py at a tiny size (the engines that need no vLLM; seconds)."""

import importlib.util
from pathlib import Path

from rlad_pl.models import load_tokenizer

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("rollout_engines",
                                               REPO / "benchmarks" / "rollout_engines.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_step_mode_times_interleaved_training_steps(tmp_path):
    out = tmp_path / "results.md"
    bench.main(["--measure", "step", "--shape", "embedded", "--engines", "kv_decode",
                "hf_generate", "--prompts", "2", "--max-new-tokens", "6", "--rounds", "1",
                "--out", str(out)])
    text = out.read_text()
    assert "whole RLAD training steps" in text
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")
            for line in text.splitlines() if line.startswith(("| kv_decode", "| hf_generate"))}
    assert sorted(rows) == ["hf_generate", "kv_decode"]
    for cells in rows.values():
        tokens, step, rollout, teacher, update = map(float, cells[1:6])
        assert 0 < tokens <= 2 * 8 * 6  # prompts x samples x max new tokens
        # the table rounds each cell to 0.01 s: the phases' sum may exceed the step by 0.015
        assert 0 < rollout and 0 < teacher and 0 < update
        assert rollout + teacher + update <= step + 0.015
        assert float(cells[6]) >= 0  # scoring + rest: the median of per-step remainders
    assert rows["kv_decode"][-1].startswith("1.00x")


def test_random_shapes_get_the_kk_tokenizer_widened_to_their_vocabulary(tmp_path):
    shape = {"config": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                        "num_key_value_heads": 1, "head_dim": 16, "intermediate_size": 64,
                        "vocab_size": 1500}}
    student, teacher = bench.step_models(shape, tmp_path)
    embedded = load_tokenizer("tiny-kk-student")
    text = "A : B knight . B : A knave . ? <think>"
    for path in (student, teacher):
        tokenizer = load_tokenizer(path)
        assert len(tokenizer) == 1500
        assert tokenizer(text)["input_ids"] == embedded(text)["input_ids"]
        assert tokenizer.eos_token_id == embedded.eos_token_id == 0
    assert (tmp_path / "teacher" / "model.safetensors").exists()
