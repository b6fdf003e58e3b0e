"""SFT data: batching and masking of (prompt, target) pairs."""

from rlad_pl.sft import collate_pairs, length_grouped_batches


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
