"""PromptDataModule: file round trip, bad records, sharding over ranks x workers, resume."""

import json
import logging

import lightning as L
import pytest
import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerFast

from rlad_pl.data import PromptDataModule
from rlad_pl.tasks.knights_knaves import NAMES, cli_generate, generate_puzzles

WORDS = ["knight", "knave", "not", "and", "or", "if", "then", "iff", ":", ".", "?", "<think>"]


def key(record):
    return json.dumps(record, sort_keys=True)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "<eos>", *WORDS, *NAMES])}
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                   eos_token="<eos>")
    path = tmp_path_factory.mktemp("tok")
    fast.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def kk_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("kk")
    cli_generate(["--out", str(out), "--people", "2", "3", "--train-per-level", "30",
                  "--test-per-level", "10", "--seed", "1"])
    return out


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_round_trip_published_layout(kk_dir, tokenizer_dir):
    dm = PromptDataModule(tokenizer=tokenizer_dir, data_dir=str(kk_dir), prompts_per_step=4,
                          val_prompts_per_step=3, train_epochs=1)
    dm.setup("fit")
    assert dm.val_subset_names == dm.test_subset_names == ["people2", "people3"]
    for name, loader in zip(dm.val_subset_names, dm.val_dataloader(), strict=False):
        seen = [r for batch in loader for r in batch["records"]]
        assert seen == read(kk_dir / "test" / f"{name}_num10.jsonl")
    batches = list(dm.train_dataloader())
    assert len(batches) == 60 // 4
    expected = read(kk_dir / "train" / "people2_num30.jsonl") + \
        read(kk_dir / "train" / "people3_num30.jsonl")
    assert sorted(key(r) for b in batches for r in b["records"]) == sorted(map(key, expected))
    batch = batches[0]
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.dtype == torch.long and ids.shape == mask.shape and ids.shape[0] == 4
    assert bool(mask[:, -1].all())  # left padded: every row ends with a real token
    assert bool((mask.cumsum(1) > 0).eq(mask.bool()).all())  # padding only on the left
    for row, prompt in zip(range(4), batch["prompts"], strict=False):
        assert dm.tokenizer.decode(ids[row][mask[row].bool()]) == prompt
        assert prompt.endswith(" ? <think>")
    assert batch["stream_position"] == 4


def test_bad_records_reported_skipped_or_rejected(tmp_path, tokenizer_dir, caplog):
    good = generate_puzzles(3, 3, seed=0)
    four = generate_puzzles(4, 1, seed=0)[0]
    lines = [json.dumps(good[0]), "{not json", json.dumps({k: v for k, v in good[1].items()
                                                            if k != "solution"}),
             json.dumps({**good[1], "statements": "(('and', ('lying', 1)),)"}),
             json.dumps({**good[1], "names": ["Zed", *good[1]["names"][1:]]}),
             json.dumps(four), "[1, 2]", "", json.dumps(good[2])]
    path = tmp_path / "people3_num9.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        dm = PromptDataModule(tokenizer=tokenizer_dir, train_files=str(path))
        dm.setup("fit")
    assert [r for r, _ in dm.splits["train"]] == [good[0], good[2]]
    for lineno in (2, 3, 4, 5, 6, 7):
        assert f"{path}:{lineno}" in caplog.text
    assert "6 bad record(s)" in caplog.text
    dm = PromptDataModule(tokenizer=tokenizer_dir, train_files=str(path), on_bad_record="error")
    with pytest.raises(ValueError, match=r"people3_num9\.jsonl:2"):
        dm.setup("fit")
    dm = PromptDataModule(tokenizer=tokenizer_dir, train_files=str(tmp_path / "missing.jsonl"))
    with pytest.raises(FileNotFoundError):
        dm.setup("fit")


def test_max_prompt_tokens_drops_long_prompts(tokenizer_dir):
    dm = PromptDataModule(tokenizer=tokenizer_dir, train_size=40, val_size_per_subset=2,
                          task_kwargs={"people": [2, 8]}, max_prompt_tokens=40)
    dm.setup("fit")
    assert {len(r["names"]) for r, _ in dm.splits["train"]} == {2}


def test_generated_splits_are_disjoint(tokenizer_dir):
    dm = PromptDataModule(tokenizer=tokenizer_dir, train_size=60, val_size_per_subset=5,
                          test_size_per_subset=5, task_kwargs={"people": [3, 4]})
    dm.setup("fit")
    train, val, test = ({r["statements"] for r, _ in dm.splits[s]} for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (60, 10, 10)
    assert not train & val and not train & test and not val & test
    assert dm.val_subset_names == ["people3", "people4"]


def test_two_ranks_two_workers_disjoint_and_complete(tokenizer_dir):
    dm = PromptDataModule(tokenizer=tokenizer_dir, train_size=50, prompts_per_step=3,
                          train_epochs=2, task_kwargs={"people": [3, 4]}, seed=3)
    dm.setup("fit")
    per_rank = []
    for rank in (0, 1):
        loader = DataLoader(dm.train_stream(rank=rank, world_size=2), batch_size=None,
                            num_workers=2, collate_fn=lambda b: b)
        per_rank.append(list(loader))
    steps = (2 * 50) // (2 * 3)
    assert [len(b) for b in per_rank] == [steps, steps]
    for batches in per_rank:  # workers interleaved back into step order
        assert [b["stream_position"] for b in batches] == [6 * (s + 1) for s in range(steps)]
    order = [key(r) for s in range(steps) for rank in (0, 1) for r in per_rank[rank][s]["records"]]
    everything = sorted(key(r) for r, _ in dm.splits["train"])
    assert sorted(order[:50]) == everything  # epoch 1: every record exactly once
    assert len(set(order[50:])) == len(order[50:]) == 46  # epoch 2 continues, no repeats
    again = list(DataLoader(dm.train_stream(rank=1, world_size=2), batch_size=None,
                            num_workers=2, collate_fn=lambda b: b))
    assert [b["prompts"] for b in again] == [b["prompts"] for b in per_rank[1]]  # deterministic


def test_resume_from_state_dict_continues_exactly(tokenizer_dir):
    kwargs = {"tokenizer": tokenizer_dir, "train_size": 30, "prompts_per_step": 4, "seed": 5,
              "task_kwargs": {"people": [3]}}
    first = PromptDataModule(**kwargs)
    first.setup("fit")
    stream = iter(first.train_dataloader())
    for _ in range(5):  # the module consumes 5 steps (crossing the 30-record epoch boundary)
        first.on_before_batch_transfer(next(stream), 0)
    state = first.state_dict()
    reference = [next(stream)["prompts"] for _ in range(6)]  # what an uninterrupted run sees
    resumed = PromptDataModule(**kwargs, num_workers=2)
    resumed.load_state_dict(state)
    assert state["consumed_prompts"] == 20
    continued = iter(resumed.train_dataloader())
    assert [next(continued)["prompts"] for _ in range(6)] == reference


class _Recorder(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen = []

    def training_step(self, batch, batch_idx):
        self.seen.append(batch["prompts"])
        return (self.weight * batch["input_ids"].float().mean()).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(tokenizer_dir, max_steps, ckpt_path=None, num_workers=0):
    dm = PromptDataModule(tokenizer=tokenizer_dir, train_size=20, prompts_per_step=3, seed=2,
                          num_workers=num_workers, task_kwargs={"people": [3]})
    module = _Recorder()
    trainer = L.Trainer(max_steps=max_steps, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0)
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    return trainer, module


def test_lightning_checkpoint_resume_continues_stream(tokenizer_dir, tmp_path):
    _, straight = _fit(tokenizer_dir, 8)
    trainer, head = _fit(tokenizer_dir, 3, num_workers=2)  # workers prefetch ahead
    trainer.save_checkpoint(tmp_path / "k3.ckpt")
    _, tail = _fit(tokenizer_dir, 8, ckpt_path=str(tmp_path / "k3.ckpt"), num_workers=2)
    assert head.seen + tail.seen == straight.seen


def test_math_task_from_its_generator(tokenizer_dir):
    dm = PromptDataModule(task="math", tokenizer=tokenizer_dir, train_size=30,
                          val_size_per_subset=4, prompts_per_step=5, train_epochs=1)
    dm.setup("fit")
    assert dm.val_subset_names == ["ops1", "ops2", "ops3"]
    batches = list(dm.train_dataloader())
    assert len(batches) == 6 and all(p.endswith(" <think>") for p in batches[0]["prompts"])
    assert {r["subset"] for b in batches for r in b["records"]} == {"ops1", "ops2", "ops3"}


def test_reiterating_the_loader_continues_instead_of_replaying(tokenizer_dir):
    dm = PromptDataModule(tokenizer=tokenizer_dir, train_size=12, prompts_per_step=2,
                          train_epochs=1, task_kwargs={"people": [3]}, num_workers=2)
    everything = [b["prompts"] for b in dm.train_dataloader()]
    loader = dm.train_dataloader()
    for batch, _ in zip(loader, range(2), strict=False):  # a Lightning epoch that consumed two steps
        dm.on_before_batch_transfer(batch, 0)
    assert [b["prompts"] for b in loader] == everything[2:]  # the next epoch goes on from there
