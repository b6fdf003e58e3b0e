"""SFT pieces: targets, batching, masking, a tiny fit that exports a loadable HF folder."""

import json

import lightning as L
import pytest
import torch

from rlad_pl.models import load_model, load_tokenizer
from rlad_pl.models.kk_trace import FORMATS, kk_target
from rlad_pl.sft import SFTModule
from rlad_pl.sft_data import SFTDataModule, collate_pairs, length_grouped_batches
from rlad_pl.tasks import get_task
from rlad_pl.tasks.knights_knaves import generate_puzzles

TINY = {"model_type": "qwen3", "hidden_size": 32, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
        "intermediate_size": 64, "tie_word_embeddings": True}


@pytest.mark.parametrize("fmt", FORMATS)
def test_targets_earn_the_full_reward(fmt):
    task = get_task("knights_knaves")
    for n in (2, 3, 4, 5, 6):
        for record in generate_puzzles(n, 30, seed=n):
            result = task.score(kk_target(record, fmt), record)
            assert result["correct"] and result["total"] == 3.0


def test_collate_masks_prompt_and_padding():
    batch = collate_pairs([([5, 6], [7, 0]), ([5], [8, 9, 0])], pad_id=1)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0], [5, 8, 9, 0]]
    assert batch["labels"].tolist() == [[-100, -100, 7, 0], [-100, 8, 9, 0]]
    short = collate_pairs([([5], [0]), ([5, 6], [7, 0])], pad_id=1)
    assert short["input_ids"][0].tolist() == [5, 0, 1, 1]
    assert short["labels"][0].tolist() == [-100, 0, -100, -100]
    assert short["attention_mask"][0].tolist() == [1, 1, 0, 0]


def test_length_grouped_batches_cover_full_batches():
    lengths = [i % 37 for i in range(1000)]
    batches = length_grouped_batches(lengths, 16, seed=0, window=4)
    flat = [i for b in batches for i in b]
    assert all(len(b) == 16 for b in batches) and len(set(flat)) == len(flat) == 992
    assert batches != length_grouped_batches(lengths, 16, seed=1, window=4)


def test_tiny_fit_exports_loadable_model(tmp_path):
    L.seed_everything(0)
    data = SFTDataModule("tiny-tokenizer", levels=["people3"], train_per_level=64,
                         val_per_level=2, test_per_level=2, batch_size=8)
    module = SFTModule("tiny-tokenizer", config=TINY, max_new_tokens=8,
                       export_dir=str(tmp_path / "out"), seed=0)
    trainer = L.Trainer(max_steps=3, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, limit_val_batches=0)
    trainer.fit(module, datamodule=data)
    trainer.test(module, datamodule=data, verbose=False)
    assert set(module.last_eval["test"]) == {"people3"}
    out = tmp_path / "out"
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    record = json.loads((out / "training_record.json").read_text())
    assert record["steps"] == 3 and record["params"] > 0
    reloaded = load_model(str(out))
    assert next(reloaded.parameters()).dtype == torch.float32
    assert load_tokenizer(str(out)).padding_side == "left"


def test_module_needs_exactly_one_model_source():
    with pytest.raises(ValueError):
        SFTModule("tiny-tokenizer")
    with pytest.raises(ValueError):
        SFTModule("tiny-tokenizer", model="tiny-kk-student", config=TINY)
