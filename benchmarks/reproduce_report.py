"""Reporting of benchmarks/reproduce.py: TensorBoard curves, mean ± std over seeds, the
markdown tables of <prefix>_table.md and <prefix>_lr_sweep.md and their figures. Test results are the tag dicts of
`rlad_pl.evaluation.evaluate_split` (`accuracy/<level>`, `accuracy/mean`, `mean@<k>`, ...)."""

from __future__ import annotations

import math
import statistics
from itertools import pairwise
from pathlib import Path

from rlad_pl.evaluation import mean_tag

RL_METHODS = ("grpo", "kdrl", "rlad")
WARM_START = "warm_start"  # results name of the untrained student
TEACHER = "teacher"  # results name of the RL methods' teacher
REFERENCE = "rlad"  # the method the paired comparison sets against each other one
ZERO_VARIANCE_TAG = "train/zero_variance_frac"


# -------------------------------------------------------------------- TensorBoard curves
def read_scalars(log_dir: Path, tags) -> dict[str, list[tuple[int, float, float]]]:
    """(step, wall_time, value) events of each present tag in a TensorBoard run folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0},
                           purge_orphaned_data=False)
    acc.Reload()
    present = set(acc.Tags()["scalars"])
    return {t: [(e.step, e.wall_time, e.value) for e in acc.Scalars(t)] for t in tags
            if t in present}


def curve(events, start_time: float) -> list[tuple[int, float, float]]:
    """(optimizer steps done, seconds since the run started, value): the RL and SFT modules
    log every scalar at the steps done (validation before training at 0)."""
    return [(step, wall - start_time, value) for step, wall, value in events]


def value_at_time(points, t: float):
    """The latest (steps, seconds, value) point reached by `t` seconds, or None."""
    reached = [p for p in points if p[1] <= t]
    return max(reached, key=lambda p: p[1]) if reached else None


def mean_curve(curves) -> list[tuple[int, float, float]]:
    """(step, mean seconds, mean value) over curves at the steps that all of them have."""
    if not curves:
        return []
    by_step = [{step: (wall, value) for step, wall, value in c} for c in curves]
    common = sorted(set.intersection(*(set(c) for c in by_step)))
    return [(s, statistics.fmean(c[s][0] for c in by_step),
             statistics.fmean(c[s][1] for c in by_step)) for s in common]


# ------------------------------------------------------------------------------- tables
def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = list(values)
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def fmt_mean_std(values, digits: int = 3) -> str:
    """'m ± s' over seeds ('m' for one value, '-' for none)."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean, std = mean_std(values)
    return f"{mean:.{digits}f}" if len(values) == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown_table(headers, rows) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def method_table(results, labels, levels, metric: str) -> str:
    """Per-level test `metric` (a family of `rlad_pl.evaluation`) and its Avg, mean ± std over
    each method's seeds."""
    rows = []
    for name, label in labels.items():
        runs = [r for r in results if r["name"] == name]
        rows.append([label, len(runs)]
                    + [fmt_mean_std(r["test"][f"{metric}/{lv}"] for r in runs)
                       for lv in levels]
                    + [fmt_mean_std(r["test"][mean_tag(metric)] for r in runs)])
    return markdown_table(["method", "seeds", *levels, "Avg"], rows)


def equal_time_rows(results, labels, among=None, step_cost=None) -> tuple[float, list[list]]:
    """The time at which the fastest of the methods `among` (default: all; mean run time over
    seeds) ended, and per method the validation accuracy each seed had reached by then.

    `step_cost` ({method: seconds per step}, measured side by side by `step_cost.py`) puts those
    methods on one clock: a validation point at step s is at s x cost, and a run ends at its last
    step x cost. Methods without a cost keep their own run clock (`seconds`, curve times)."""
    step_cost = step_cost or {}

    def points(r):
        cost = step_cost.get(r["name"])
        return r["curves"]["val"] if cost is None else \
            [(s, s * cost, v) for s, _, v in r["curves"]["val"]]

    def run_seconds(r):
        cost = step_cost.get(r["name"])
        return r["seconds"] if cost is None else max(s for s, _, _ in r["curves"]["val"]) * cost

    seconds = {n: statistics.fmean(run_seconds(r) for r in results if r["name"] == n)
               for n in labels}
    t_star = min(seconds[n] for n in (among or labels))
    rows = []
    for name, label in labels.items():
        runs = [r for r in results if r["name"] == name]
        reached = [value_at_time(points(r), t_star) for r in runs]
        rows.append([label, f"{seconds[name]:.0f}",
                     fmt_mean_std(p[2] if p else None for p in reached),
                     "/".join(str(p[0]) if p else "-" for p in reached),
                     fmt_mean_std(r["curves"]["val"][-1][2] if r["curves"]["val"] else None
                                  for r in runs)])
    return t_star, rows


# -------------------------------------------------------------------- paired comparison
def sign_flip_p(diffs) -> float:
    """Exact two-sided p of the paired sign-flip test of mean(diffs) = 0: the share of the 2^n
    sign patterns whose |sum| reaches the observed one (n seeds: never below 2 / 2^n)."""
    diffs = list(diffs)
    observed = abs(sum(diffs)) - 1e-12
    hits = sum(abs(sum(d if mask >> i & 1 else -d for i, d in enumerate(diffs))) >= observed
               for mask in range(2 ** len(diffs)))
    return hits / 2 ** len(diffs)


def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p for b and c discordant pairs (binomial(b + c, 1/2))."""
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n)


def discordant(reference: dict, other: dict) -> tuple[int, int]:
    """(problems only `reference` solved greedily, problems only `other` solved) over the levels
    of two `rlad_pl.evaluation.problem_outcomes` results on the same test split."""
    b = c = 0
    for level, outcomes in reference.items():
        for x, y in zip(outcomes["greedy_correct"], other[level]["greedy_correct"], strict=True):
            b, c = b + (x > y), c + (y > x)
    return b, c


def paired_rows(results, labels, k: int, warm_start: dict) -> list[list]:
    """RLAD against each other method and the warm start, paired by seed (same data stream,
    same test split) and by test problem: per-seed differences of the test Avg (greedy and
    mean@k) with their sign-flip p, and the pooled per-problem greedy McNemar test."""
    reference = {r["seed"]: r for r in results if r["name"] == REFERENCE}
    others = {name: {r["seed"]: r for r in results if r["name"] == name}
              for name in labels if name != REFERENCE}
    others[WARM_START] = dict.fromkeys(reference, warm_start)
    rows = []
    for name, by_seed in others.items():
        seeds = sorted(set(reference) & set(by_seed))
        if not seeds:
            continue
        row = [labels.get(name, "Warm start"), len(seeds)]
        for metric in ("accuracy", f"mean@{k}"):
            diffs = [reference[s]["test"][mean_tag(metric)] - by_seed[s]["test"][mean_tag(metric)]
                     for s in seeds]
            row += [fmt_mean_std(diffs, 3), f"{sum(d > 0 for d in diffs)}/{len(seeds)}",
                    f"{sign_flip_p(diffs):.3f}"]
        b, c = map(sum, zip(*(discordant(reference[s]["problems"], by_seed[s]["problems"])
                              for s in seeds), strict=True))
        rows.append(row + [f"{b} / {c}", f"{mcnemar_p(b, c):.2g}"])
    return rows


def write_report(path: Path, header: list[str], results, labels, ablation: dict[str, float],
                 ablation_seed: int, levels, k: int, warm_start: dict,
                 teacher: dict | None = None, teacher_name: str = "",
                 step_cost: dict | None = None) -> None:
    """<prefix>_table.md: test tables at equal steps (the `teacher` and `warm_start` student's
    test results as the first rows), RLAD paired against every other method, the
    equal-wall-time table, malformed rates and reward-variance shares, and the alpha ablation
    (`ablation`: run name -> alpha; `step_cost`: {"source", "step_s": {method: s}}, the clock of
    the equal-wall-time table). Each result (and `warm_start`, `teacher`) holds "test"
    tags and, for the paired comparison, "problems" (`rlad_pl.evaluation.problem_outcomes`)."""
    parts = ["\n".join(header)]
    with_start = [{"name": WARM_START, "variance_share": None, **warm_start}, *results]
    start_labels = {WARM_START: "Warm start (the student before training)", **labels}
    if teacher is not None:
        with_start.insert(0, {"name": TEACHER, "variance_share": None, **teacher})
        start_labels = {TEACHER: f"Teacher ({teacher_name})", **start_labels}
    for metric, title in (("accuracy", "Greedy accuracy"),
                          (f"mean@{k}", f"Sampled mean@{k}"),
                          (f"pass@{k}", f"Sampled pass@{k} (unbiased)")):
        parts.append(f"## {title} on the test split, equal steps (mean ± std over seeds)\n\n"
                     + method_table(with_start, start_labels, levels, metric))
    if any(r["name"] == REFERENCE for r in results):
        parts.append(
            f"## {labels[REFERENCE]} against each baseline, paired\n\n"
            "Per seed, the difference of the test Avg (RLAD minus the baseline; the same seed "
            "means the same training stream and the same test split), mean ± std over seeds, "
            "how many seeds RLAD is ahead, and the exact two-sided sign-flip p over the seeds "
            "(with n seeds it cannot go below 2 / 2^n). Per problem, pooled over seeds and "
            "levels: the test problems only RLAD solves greedily / only the baseline solves, "
            "and the exact McNemar p; it measures the test-sample noise only, not the "
            "seed-to-seed spread of training.\n\n"
            + markdown_table(["baseline", "seeds", "Δ greedy", "RLAD ahead", "p (seeds)",
                              f"Δ mean@{k}", "RLAD ahead", "p (seeds)",
                              "problems only RLAD / only baseline", "p (McNemar)"],
                             paired_rows(results, labels, k, warm_start)))
    rl = [n for n in labels if n in RL_METHODS]
    t_star, rows = equal_time_rows(results, labels, rl, step_cost and step_cost["step_s"])
    if step_cost:
        clock = (
            "Time is steps x the method's seconds per step measured side by side in one "
            f"interleaved run ({step_cost['source']}: "
            + ", ".join(f"{labels.get(m, m)} {c:.2f} s" for m, c in step_cost["step_s"].items()
                        if m in labels)
            + "), so every RL method is on one clock whatever load its training ran under; "
            "offline distillation keeps its own run clock (teacher sampling included). ")
    else:
        clock = ("Time is each run's own clock, from the start of the process (model loading "
                 "included) to its exit, for offline distillation from the start of the teacher "
                 "sampling: **runs trained under different loads are not comparable this "
                 "way** (give reproduce.py --step-cost). ")
    parts.append(
        "## Equal wall time\n\n"
        f"Validation accuracy (greedy, mean over levels) that each seed had reached after "
        f"{t_star:.0f} s, the mean run time of the fastest "
        f"{'RL method (offline distillation is not a run of RL steps)' if rl else 'method'}. "
        + clock
        + "RL methods validate on their DataModule's "
        "validation split, offline distillation on the SFT config's (another split: compare "
        "each method with its own step 0, the warm start before training; offline runs "
        "trained before the SFT module logged its sanity pass have no step-0 point).\n\n"
        + markdown_table(["method", "run time (s)", "val Avg at that time",
                          "steps done (per seed)", "val Avg at the end"], rows))
    rows = [[label,
             fmt_mean_std(r["test"][mean_tag("malformed")] for r in with_start
                          if r["name"] == name),
             fmt_mean_std(r["test"][mean_tag(f"malformed@{k}")] for r in with_start
                          if r["name"] == name),
             fmt_mean_std(r.get("variance_share") for r in with_start if r["name"] == name)]
            for name, label in start_labels.items()]
    parts.append(
        "## Malformed outputs and groups with reward variance\n\n"
        "Malformed: share of test completions whose answer could not be read (format broken or "
        "roles unparseable), mean over levels. Groups with variance: share of training prompt "
        f"groups whose G rewards differ (1 - `{ZERO_VARIANCE_TAG}`), mean over training steps "
        "(RL only).\n\n"
        + markdown_table(["method", "malformed (greedy)", f"malformed (sampled, k={k})",
                          "groups with reward variance"], rows))
    if ablation:
        rows = []
        for name, alpha in ablation.items():
            runs = [r for r in results if r["name"] == name and r["seed"] == ablation_seed]
            rows.append([alpha, *(fmt_mean_std(r["test"][mean_tag(m)] for r in runs) for m in
                                  ("accuracy", f"mean@{k}", f"pass@{k}", "malformed")),
                         fmt_mean_std(r["variance_share"] for r in runs)])
        parts.append(f"## RLAD alpha ablation (seed {ablation_seed}, test Avg over levels)\n\n"
                     + markdown_table(["alpha", "greedy", f"mean@{k}", f"pass@{k}",
                                       "malformed (greedy)", "groups with reward variance"],
                                      rows))
    path.write_text("\n\n".join(parts) + "\n")


# ------------------------------------------------------------------ learning-rate sweep
def quarter_means(points) -> list[float]:
    """Mean value of each quarter of a curve (by step order; fewer parts for < 4 points)."""
    values = [v for _, _, v in points]
    bounds = sorted({round(i * len(values) / 4) for i in range(5)})
    return [statistics.fmean(values[a:b]) for a, b in pairwise(bounds)]


def sweep_score(result) -> float | None:
    """What the sweep selects on: mean greedy validation accuracy over the validation points
    after step 0 (the run's own validation split; never the test split)."""
    after = [v for step, _, v in result["curves"]["val"] if step > 0]
    return statistics.fmean(after) if after else None


def chosen_lrs(results) -> dict[str, float]:
    """Per method, the lr with the highest `sweep_score` (mean over seeds)."""
    best = {}
    for method in dict.fromkeys(r["method"] for r in results):
        scores = {lr: statistics.fmean(sweep_score(r) for r in results
                                       if r["method"] == method and r["lr"] == lr)
                  for lr in dict.fromkeys(r["lr"] for r in results if r["method"] == method)}
        best[method] = max(scores, key=scores.get)
    return best


def write_sweep_report(path: Path, header: list[str], results, labels, k: int) -> dict:
    """<prefix>_lr_sweep.md: per method and lr, the training reward by quarter, validation accuracy
    (greedy, and sampled mean@k for RL) at each validation step and the selection score, mean
    over seeds. Returns `chosen_lrs`."""
    chosen = chosen_lrs(results)
    rows = []
    for method, label in labels.items():
        for lr in dict.fromkeys(r["lr"] for r in results if r["method"] == method):
            runs = [r for r in results if r["method"] == method and r["lr"] == lr]
            reward = [statistics.fmean(q) for q in
                      zip(*(quarter_means(r["curves"]["reward"]) for r in runs), strict=True)]
            greedy = mean_curve([r["curves"]["val"] for r in runs])
            sampled = mean_curve([r["curves"]["val_sampled"] for r in runs
                                  if r["curves"].get("val_sampled")])
            rows.append([label, f"{lr:g}", len(runs),
                         " / ".join(f"{v:.3f}" for v in reward) or "-",
                         " -> ".join(f"{v:.3f} ({s})" for s, _, v in greedy),
                         " -> ".join(f"{v:.3f} ({s})" for s, _, v in sampled) or "-",
                         fmt_mean_std(sweep_score(r) for r in runs),
                         f"{statistics.fmean(r['seconds'] for r in runs):.0f}",
                         "**chosen**" if chosen[method] == lr else ""])
    table = markdown_table(
        ["method", "lr", "seeds", "train reward q1 / q2 / q3 / q4", "greedy val (step)",
         f"sampled mean@{k} val (step)", "score", "run time (s)", "choice"], rows)
    path.write_text("\n".join(header) + "\n\n" + table + "\n")
    return chosen


def plot_curves(path: Path, results, labels, title: str) -> None:
    """Training reward and validation accuracy, mean over seeds, against steps and seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for name, label in labels.items():
        runs = [r for r in results if r["name"] == name]
        for col, key in enumerate(("reward", "val")):
            curve = mean_curve([r["curves"][key] for r in runs if r["curves"][key]])
            if not curve:
                continue
            steps, seconds, values = zip(*curve, strict=True)
            style = {"label": f"{label} ({len(runs)} seeds)",
                     "marker": "o" if key == "val" else None}
            axes[0][col].plot(steps, values, **style)
            axes[1][col].plot(seconds, values, **style)
    for row, xlabel in enumerate(("optimizer steps", "wall seconds since the run started")):
        axes[row][0].set_ylabel("training reward (mean)")
        axes[row][1].set_ylabel("validation accuracy (greedy, Avg)")
        for ax in axes[row]:
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3)
    axes[0][1].legend(fontsize=8)
    fig.suptitle(f"{title}: mean over seeds (offline distillation has no reward)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def moving_average(values, window: int) -> list[float]:
    """Trailing mean over up to `window` values (the first points average what they have)."""
    return [statistics.fmean(values[max(0, i + 1 - window):i + 1]) for i in range(len(values))]


def plot_sweep(path: Path, results, labels, window: int = 10) -> None:
    """One column per method: training reward (trailing mean over `window` steps) and validation
    accuracy (greedy solid, sampled dashed) against steps, one line per lr (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(labels), figsize=(4.2 * len(labels), 7), squeeze=False)
    for col, (method, label) in enumerate(labels.items()):
        for lr in dict.fromkeys(r["lr"] for r in results if r["method"] == method):
            runs = [r for r in results if r["method"] == method and r["lr"] == lr]
            reward = mean_curve([r["curves"]["reward"] for r in runs if r["curves"]["reward"]])
            line = None
            if reward:
                steps, _, values = zip(*reward, strict=True)
                (line,) = axes[0][col].plot(steps, moving_average(values, window),
                                            label=f"lr {lr:g}")
            color = {"color": line.get_color()} if line else {}
            for key, style in (("val", "-"), ("val_sampled", "--")):
                points = mean_curve([r["curves"][key] for r in runs if r["curves"].get(key)])
                if points:
                    steps, _, values = zip(*points, strict=True)
                    axes[1][col].plot(steps, values, style, marker="o", **color,
                                      label=f"lr {lr:g}" if key == "val" else None)
        if not axes[0][col].lines:
            axes[0][col].text(0.5, 0.5, "no training reward (SFT)", ha="center",
                              transform=axes[0][col].transAxes)
        axes[0][col].set_title(label)
        axes[0][col].set_ylabel(f"training reward ({window}-step trailing mean)")
        axes[1][col].set_ylabel("validation accuracy (greedy -, sampled --)")
        for ax in axes[:, col]:
            ax.set_xlabel("optimizer steps")
            ax.grid(alpha=0.3)
        axes[1][col].legend(fontsize=8)
    fig.suptitle("Learning-rate sweep (selection on validation only)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
