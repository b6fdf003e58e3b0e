"""One evaluation for every caller: metric functions without generation (`metrics`: per-problem
values, tags) and the generate-and-score loop over task records (`scoring`)."""

from rlad_pl.evaluation.metrics import (
    GREEDY_FAMILIES,
    families,
    headline,
    mean_tag,
    mixed_outcomes,
    pass_at_k,
    problem_metrics,
    summarize,
    valid_ks,
)
from rlad_pl.evaluation.scoring import (
    evaluate_split,
    group_signal,
    problem_outcomes,
    score_records,
    score_split,
    score_tensors,
    subset_metrics,
    summarize_split,
)

__all__ = [
    "GREEDY_FAMILIES",
    "evaluate_split",
    "families",
    "group_signal",
    "headline",
    "mean_tag",
    "mixed_outcomes",
    "pass_at_k",
    "problem_metrics",
    "problem_outcomes",
    "score_records",
    "score_split",
    "score_tensors",
    "subset_metrics",
    "summarize",
    "summarize_split",
    "valid_ks",
]
