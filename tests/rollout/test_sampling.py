"""Sampling completions for prompt texts with the KV-cache engine."""

import time

import pytest

from rlad_pl.models import load_model, load_tokenizer
from rlad_pl.rollout.sampling import sample_completions
from rlad_pl.tasks import get_task
from rlad_pl.tasks.knights_knaves import generate_puzzles


@pytest.fixture(scope="module")
def kk():
    return get_task("knights_knaves")


def test_load_and_sample_eight_completions_fast(kk):
    record = generate_puzzles(4, 1, seed=11)[0]
    start = time.perf_counter()
    model, tok = load_model("tiny-kk-student"), load_tokenizer("tiny-kk-student")
    texts = sample_completions(model, tok, [kk.prompt(record)], num_samples=8,
                               temperature=1.0, max_new_tokens=640)
    assert len(texts) == 8
    assert time.perf_counter() - start < 30  # 0.4-1 s measured; generous for loaded CI
