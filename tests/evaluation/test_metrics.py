"""Evaluation metrics without generation: pass@k, per-problem values, the tag scheme."""

import itertools
import math

import pytest
import torch

from rlad_pl.evaluation import (
    families,
    headline,
    mixed_outcomes,
    pass_at_k,
    problem_metrics,
    problem_outcomes,
    subset_metrics,
    summarize,
    summarize_split,
)
from rlad_pl.tasks import get_task
from rlad_pl.tasks.knights_knaves.reward import ANSWER_UNPARSED


def test_pass_at_k_is_the_unbiased_estimator():
    n = 5
    for c, k in itertools.product(range(n + 1), range(1, n + 1)):
        # brute force: probability that a random k-subset of the n samples holds a correct one
        subsets = list(itertools.combinations([i < c for i in range(n)], k))
        expected = sum(any(s) for s in subsets) / len(subsets)
        got = float(pass_at_k(n, torch.tensor([c]), k)[0])
        assert math.isclose(got, expected, abs_tol=1e-6), (c, k)


def test_problem_metrics_per_family():
    greedy = torch.tensor([True, False, False])
    sampled = torch.tensor([[True, False, True, False], [False] * 4, [True] * 4])
    values = problem_metrics(greedy, sampled, greedy_malformed=torch.tensor([False, True, False]),
                             sampled_malformed=sampled.logical_not(), pass_k=[1, 2, 9])
    assert set(values) == {"accuracy", "malformed", "mean@4", "pass@1", "pass@2", "malformed@4"}
    assert values["accuracy"].tolist() == [1.0, 0.0, 0.0]
    assert values["mean@4"].tolist() == [0.5, 0.0, 1.0]
    assert values["pass@2"].tolist() == pytest.approx([5 / 6, 0.0, 1.0])
    assert values["malformed@4"].tolist() == [0.5, 1.0, 0.0]
    assert mixed_outcomes(sampled).tolist() == [1.0, 0.0, 0.0]
    assert families(True, 4, [1, 2, 9]) == list(values)[:2] + ["mean@4", "pass@1", "pass@2",
                                                               "malformed@4"]
    assert families(False, 0) == []


def test_summarize_tags_and_means_over_subsets():
    per_subset = {"people3": {"accuracy": 0.5, "mean@4": 0.25, "pass@4": 0.75},
                  "people4": {"accuracy": 0.25, "mean@4": 0.5}}
    tags = summarize(per_subset, ["people3", "people4"])
    assert tags == {"accuracy/people3": 0.5, "mean@4/people3": 0.25, "pass@4/people3": 0.75,
                    "accuracy/people4": 0.25, "mean@4/people4": 0.5,
                    "accuracy/mean": 0.375, "mean@4": 0.375, "pass@4": 0.75}
    assert headline(tags) == {"accuracy/mean": 0.375, "mean@4": 0.375, "pass@4": 0.75}
    assert summarize({"a": {"malformed": 0.5}, "b": {"malformed": 0.0}})["malformed/mean"] == 0.25


def _score(correct: bool, malformed: bool = False) -> dict:
    answer = ANSWER_UNPARSED if malformed else (2.0 if correct else -1.5)
    return {"correct": correct, "answer": answer}


def test_subset_metrics_accuracy_mean_pass_and_malformed():
    task = get_task("knights_knaves")
    greedy = [[_score(True)], [_score(False, malformed=True)], [_score(False)], [_score(False)]]
    sampled = [[_score(True), _score(False), _score(True), _score(False)],
               [_score(False, True)] * 4,
               [_score(False)] * 3 + [_score(True)],
               [_score(False)] * 2 + [_score(False, True)] * 2]
    m = subset_metrics(task, greedy, sampled, pass_k=[4])
    assert m["accuracy"] == 0.25
    assert m["mean@4"] == pytest.approx(3 / 16)
    assert m["pass@4"] == pytest.approx(2 / 4)  # k = n: a puzzle passes if any sample is right
    assert m["malformed"] == 0.25
    assert m["malformed@4"] == pytest.approx(6 / 16)
    avg = summarize({"people3": m, "people4": {**m, "accuracy": 0.75}})
    assert avg["accuracy/mean"] == 0.5 and avg["malformed@4"] == pytest.approx(6 / 16)


def test_split_summary_and_per_problem_outcomes_of_the_same_scores():
    task = get_task("knights_knaves")
    greedy = [[_score(True)], [_score(False)], [_score(False, malformed=True)]]
    sampled = [[_score(True), _score(True)], [_score(False), _score(True)], [_score(False)] * 2]
    scored = {"people3": (greedy, sampled), "people4": (greedy[:1], None)}
    assert problem_outcomes(task, scored) == {
        "people3": {"greedy_correct": [1, 0, 0], "sampled_correct": [2, 1, 0]},
        "people4": {"greedy_correct": [1]}}
    tags = summarize_split(task, {"people3": (greedy, sampled)}, pass_k=[2])
    assert tags == summarize({"people3": subset_metrics(task, greedy, sampled, pass_k=[2])})
