"""Split rules of generated data (rlad_pl.tasks.splits)."""

from rlad_pl.tasks import get_task
from rlad_pl.tasks.splits import (
    disjoint_split,
    held_out_splits,
    prompt_split,
    records_of,
    sft_splits,
    split_fingerprint,
)


def test_test_split_avoids_excluded_puzzles_and_prompts():
    task = get_task("knights_knaves", people=[3, 4])
    plain = {lv: task.generate(12, seed=999, subset=lv) for lv in task.subsets}
    excluded_records = plain["people3"][:3]  # e.g. RL training records
    excluded_prompts = [task.prompt(r) for r in plain["people4"][:2]]  # offline pairs
    split = disjoint_split(task, task.subsets, 8, 999, excluded_records,
                                   excluded_prompts)
    assert [len(v) for v in split.values()] == [8, 8]
    keys = {r["statements"] for r in excluded_records}
    assert not any(r["statements"] in keys for r in split["people3"])
    assert not any(task.prompt(r) in excluded_prompts for r in split["people4"])
    assert [r["statements"] for r in split["people4"]] == \
        [r["statements"] for r in plain["people4"][2:10]]
    assert split_fingerprint(split, task) == split_fingerprint(
        disjoint_split(task, task.subsets, 8, 999, excluded_records, excluded_prompts), task)


def statements(records):
    return {r["statements"] for r in records}


def test_sft_splits_keep_training_apart_from_validation_and_test():
    task = get_task("knights_knaves", people=[3, 4])
    train, val, test = sft_splits(task, ["people3", "people4"], 30, 5, 6, seed=1, val_seed=998,
                                  test_seed=999)
    assert [len(v) for v in val.values()] == [5, 5] and [len(t) for t in test.values()] == [6, 6]
    assert len(train) == 60 and [task.subset(r) for r in train[::30]] == ["people3", "people4"]
    assert not statements(train) & statements(records_of(val, test))
    assert not statements(records_of(val)) & statements(records_of(test))
    assert (val, test) == held_out_splits(task, ["people3", "people4"], 5, 6, 998, 999)
    assert split_fingerprint(val, task) != split_fingerprint(test, task)
    math = get_task("math")
    math_val, math_test = held_out_splits(math, math.subsets, 3, 3, 998, 999)
    assert split_fingerprint(math_val, math) != split_fingerprint(math_test, math)


def test_prompt_splits_per_subset_for_evaluation_and_apart_from_it():
    task = get_task("knights_knaves", people=[2, 3])
    val = prompt_split(task, "val", 4, seed=0)
    assert [task.subset(r) for r in val] == ["people2"] * 4 + ["people3"] * 4
    train = prompt_split(task, "train", 20, seed=0, exclude=val)
    assert len(train) == 20 and not statements(train) & statements(val)
    assert prompt_split(task, "val", 4, seed=0) == val  # deterministic
