"""SFTModule: a tiny fit that exports a loadable HF folder; one model source."""

import json

import lightning as L
import pytest
import torch

from rlad_pl.models import load_model, load_tokenizer
from rlad_pl.sft import SFTDataModule, SFTModule

TINY = {"model_type": "qwen3", "hidden_size": 32, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
        "intermediate_size": 64, "tie_word_embeddings": True}


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
    assert {"test/accuracy/people3", "test/accuracy/mean", "test/malformed/people3",
            "test/malformed/mean"} <= set(trainer.callback_metrics)
    assert float(trainer.callback_metrics["test/accuracy/mean"]) == \
        pytest.approx(module.last_eval["test"]["people3"])
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


def test_scalars_are_logged_at_the_optimizer_steps_done(tmp_path):
    """As the RL module's: the same x-axis for every run in TensorBoard and in the reports, and
    the full sanity pass is the validation at step 0 (the warm start on the SFT split)."""
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    L.seed_everything(0)
    data = SFTDataModule("tiny-tokenizer", levels=["people3"], train_per_level=64,
                         val_per_level=2, test_per_level=2, batch_size=8)
    module = SFTModule("tiny-tokenizer", config=TINY, max_new_tokens=8, seed=1)  # data's seed
    logger = TensorBoardLogger(str(tmp_path), name="sft", version=0)
    trainer = L.Trainer(max_steps=4, val_check_interval=2, log_every_n_steps=1, logger=logger,
                        enable_checkpointing=False, enable_progress_bar=False,
                        num_sanity_val_steps=-1)
    trainer.fit(module, datamodule=data)
    events = EventAccumulator(logger.log_dir)
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    assert [e.step for e in events.Scalars("val/accuracy/mean")] == [0, 2, 4]
