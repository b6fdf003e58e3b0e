"""SFT data: batching and masking of (prompt, target) pairs."""

from rlad_pl.sft import SFTDataModule, collate_pairs, length_grouped_batches
from rlad_pl.tasks import get_task
from rlad_pl.tasks.splits import sft_splits


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


def test_training_pairs_are_the_split_rules_training_records():
    args = {"tokenizer": "tiny-kk-student", "levels": ["people3", "people4"],
            "train_per_level": 6, "val_per_level": 3, "test_per_level": 4, "seed": 5}
    dm = SFTDataModule(**args)
    dm.setup("fit")
    rebuilt, val, test = sft_splits(get_task("knights_knaves"), args["levels"], 6, 3, 4, seed=5,
                                    val_seed=998, test_seed=999)
    prompts = [dm.encode_pair(dm.task.prompt(r), "")[0] for r in rebuilt]
    assert prompts == [p for p, _ in dm.train_pairs]
    assert (dm.val_records, dm.test_records) == (val, test)
