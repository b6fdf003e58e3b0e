"""Shipped embedded models and tokenizer: loading by short name and path, generation, scoring."""

import random

import pytest
import torch

from rlad_pl.evaluation import score_records
from rlad_pl.models import (
    EMBEDDED_DIR,
    check_tokenizers_compatible,
    load_model,
    load_tokenizer,
    resolve_model_path,
)
from rlad_pl.models.tokenizer import TAGS, build_tokenizer
from rlad_pl.tasks import get_task
from rlad_pl.tasks.knights_knaves import generate_puzzles

KK_MODELS = ["tiny-kk-teacher", "tiny-kk-student"]
MATH_MODELS = ["tiny-math-teacher", "tiny-math-student"]


@pytest.fixture(scope="module")
def kk():
    return get_task("knights_knaves")


def test_resolve_short_names_and_pass_through():
    for name in KK_MODELS + MATH_MODELS + ["tiny-tokenizer"]:
        assert resolve_model_path(name) == str(EMBEDDED_DIR / name)
    assert resolve_model_path("Qwen/Qwen3-0.6B") == "Qwen/Qwen3-0.6B"
    assert resolve_model_path("/some/local/dir") == "/some/local/dir"


@pytest.mark.parametrize("name", KK_MODELS)
def test_load_by_name_and_path_generate_and_score(name, kk):
    by_name, by_path = load_model(name), load_model(str(EMBEDDED_DIR / name))
    assert next(by_name.parameters()).dtype == torch.float32
    for a, b in zip(by_name.parameters(), by_path.parameters(), strict=False):
        assert torch.equal(a, b)
    tok = load_tokenizer(name)
    assert tok.padding_side == "left" and tok.pad_token_id is not None
    assert tok.eos_token_id is not None and tok.pad_token_id != tok.eos_token_id
    record = generate_puzzles(3, 1, seed=5)[0]
    [[result]] = score_records(kk, by_name, tok, [record], max_new_tokens=400)
    assert {"format", "answer", "total", "correct"} <= set(result)
    assert "</think>" in result["text"]  # the tags survive decoding


@pytest.mark.parametrize("name", MATH_MODELS)
def test_math_models_generate_and_score(name):
    task = get_task("math")
    model, tok = load_model(name), load_tokenizer(name)
    [[result]] = score_records(task, model, tok, task.generate(1, seed=3), max_new_tokens=96)
    assert {"format", "answer", "total", "correct"} <= set(result)


def test_all_embedded_tokenizers_compatible():
    reference = load_tokenizer("tiny-tokenizer")
    for name in KK_MODELS + MATH_MODELS:
        check_tokenizers_compatible(load_tokenizer(name), reference)


def test_incompatible_tokenizers_are_reported():
    other = build_tokenizer(["completely different words only"] * 20, vocab_size=300)
    with pytest.raises(ValueError, match="vocab size|different ids"):
        check_tokenizers_compatible(other, load_tokenizer("tiny-kk-teacher"))


def test_tokenizer_round_trips_any_utf8_without_unknown():
    tok = load_tokenizer("tiny-tokenizer")
    rng = random.Random(0)
    samples = ["héllo wörld", "数学 🎉 \x00\x01\t\n  end ", "Zoey : Liam knave . ? <think>",
               "\\boxed{3/4} #### 12"]
    samples += ["".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x2FFF),
                                        rng.randrange(0x1F300, 0x1F5FF)])) for _ in range(40))
                for _ in range(50)]
    for text in samples:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
        assert tok.unk_token_id is None or tok.unk_token_id not in ids
    for tag in (*TAGS, tok.eos_token, tok.pad_token):
        assert len(tok(tag, add_special_tokens=False)["input_ids"]) == 1


def test_teacher_beats_student_on_fixed_slice(kk):
    torch.manual_seed(0)
    records = generate_puzzles(3, 60, seed=2024)  # the embedded level
    accuracy = {}
    for name in KK_MODELS:
        scores = score_records(kk, load_model(name), load_tokenizer(name), records,
                               max_new_tokens=384)
        accuracy[name] = sum(s[0]["correct"] for s in scores) / len(scores)
    assert accuracy["tiny-kk-teacher"] > accuracy["tiny-kk-student"], accuracy


def test_math_teacher_beats_student_on_fixed_slice():
    task = get_task("math")
    records = task.generate(60, seed=2024)
    accuracy = {}
    for name in MATH_MODELS:
        scores = score_records(task, load_model(name), load_tokenizer(name), records,
                               max_new_tokens=96)
        accuracy[name] = sum(s[0]["correct"] for s in scores) / len(scores)
    assert accuracy["tiny-math-teacher"] > accuracy["tiny-math-student"] + 0.3, accuracy
