"""Mutants of rlad_pl/objectives/ that no test can kill because they do not change behaviour.

Each entry names the function, the line before and after the mutation (as ``mutmut show``
prints them, stripped) and why the two are the same program for every input the code accepts.
``python -m benchmarks.mutation`` matches survivors against this list; a survivor that is not
here fails the run. Keep the list short and every reason checkable.
"""

_TWO_D = "the tensor is 2-D ([B, T] or [groups, G]), so dim +1 is dim -1"
_SUM_NORM = (
    "sum-norm is (sum of all real values) / (C * n_completions): summing rows first, columns "
    "first or everything at once gives the same number"
)
_ZERO_0D = (
    "a 0-dim float32 zero in torch.where / arithmetic with a floating tensor takes that "
    "tensor's dtype (0-dim tensors do not promote within a category); every caller passes "
    "floating tensors"
)
_DEVICE = (
    "device=None puts the 0-dim constant on the CPU; torch.where accepts a 0-dim CPU tensor "
    "with tensors on any device, and on this CPU-only test machine the two are identical"
)
_DEVICE_METRIC = (
    "device=None makes this metric a CPU tensor; identical on a CPU-only machine (on a GPU only "
    "the metric's device would differ)"
)

_ON = "return torch.where(mask.bool(), x, torch.zeros((), "

EQUIVALENT = [
    # advantages.py
    {"function": "rlad_pl.objectives.advantages.group_advantages",
     "before": "A = R - R.mean(-1, keepdim=True)",
     "after": "A = R - R.mean(+1, keepdim=True)", "why": _TWO_D},
    {"function": "rlad_pl.objectives.advantages.group_advantages",
     "before": "A = A / (R.std(-1, correction=0, keepdim=True) + eps)",
     "after": "A = A / (R.std(+1, correction=0, keepdim=True) + eps)", "why": _TWO_D},
    {"function": "rlad_pl.objectives.advantages.group_advantages",
     "before": "zero_variance = (R == R[:, :1]).all(-1, keepdim=True).expand_as(R)",
     "after": "zero_variance = (R == R[:, :1]).all(+1, keepdim=True).expand_as(R)", "why": _TWO_D},
    {"function": "rlad_pl.objectives.advantages.group_advantages",
     "before": "A = torch.where(zero_variance, torch.zeros((), dtype=A.dtype), A)",
     "after": "A = torch.where(zero_variance, torch.zeros((), dtype=None), A)",
     "why": _ZERO_0D + " (A is at least float32)"},
    {"function": "rlad_pl.objectives.advantages.group_advantages",
     "before": "A = torch.where(zero_variance, torch.zeros((), dtype=A.dtype), A)",
     "after": "A = torch.where(zero_variance, torch.zeros((), ), A)",
     "why": _ZERO_0D + " (A is at least float32)"},
    # aggregation.py
    {"function": "rlad_pl.objectives.aggregation.aggregate",
     "before": "n_tokens = mask.sum(-1)  # [B]", "after": "n_tokens = mask.sum(+1)  # [B]",
     "why": _TWO_D},
    {"function": "rlad_pl.objectives.aggregation.aggregate",
     "before": "return (v.sum(-1) / n_tokens.clamp(min=1)).sum() / n_completions",
     "after": "return (v.sum(+1) / n_tokens.clamp(min=1)).sum() / n_completions", "why": _TWO_D},
    {"function": "rlad_pl.objectives.aggregation.aggregate",
     "before": "C = values.shape[-1] if sum_norm_constant is None else sum_norm_constant",
     "after": "C = values.shape[+1] if sum_norm_constant is None else sum_norm_constant",
     "why": _TWO_D},
    {"function": "rlad_pl.objectives.aggregation.aggregate",
     "before": "return (v.sum(-1) / C).sum() / n_completions",
     "after": "return (v.sum(+1) / C).sum() / n_completions", "why": _TWO_D},
    {"function": "rlad_pl.objectives.aggregation.aggregate",
     "before": "return (v.sum(-1) / C).sum() / n_completions",
     "after": "return (v.sum(None) / C).sum() / n_completions", "why": _SUM_NORM},
    {"function": "rlad_pl.objectives.aggregation.aggregate",
     "before": "return (v.sum(-1) / C).sum() / n_completions",
     "after": "return (v.sum(-2) / C).sum() / n_completions", "why": _SUM_NORM},
    # logprobs.py
    {"function": "rlad_pl.objectives.logprobs._scaled",
     "before": "return logits if temperature == 1.0 else logits / temperature",
     "after": "return logits if (temperature == 1.0) and False else logits / temperature",
     "why": "always dividing: logits / 1.0 is bit-identical to logits (only a copy is made)"},
    # tokens.py
    {"function": "rlad_pl.objectives.tokens.on_tokens",
     "before": _ON + "dtype=x.dtype, device=x.device))",
     "after": _ON + "dtype=None, device=x.device))",
     "why": _ZERO_0D},
    {"function": "rlad_pl.objectives.tokens.on_tokens",
     "before": _ON + "dtype=x.dtype, device=x.device))",
     "after": _ON + "device=x.device))",
     "why": _ZERO_0D},
    {"function": "rlad_pl.objectives.tokens.on_tokens",
     "before": _ON + "dtype=x.dtype, device=x.device))",
     "after": _ON + "dtype=x.dtype, device=None))",
     "why": _DEVICE},
    {"function": "rlad_pl.objectives.tokens.on_tokens",
     "before": _ON + "dtype=x.dtype, device=x.device))",
     "after": _ON + "dtype=x.dtype, ))",
     "why": _DEVICE},
    # surrogate.py
    {"function": "rlad_pl.objectives.surrogate.ratio_metrics",
     "before": "one = torch.ones((), dtype=r.dtype, device=r.device)",
     "after": "one = torch.ones((), dtype=r.dtype, device=None)", "why": _DEVICE_METRIC},
    {"function": "rlad_pl.objectives.surrogate.ratio_metrics",
     "before": "one = torch.ones((), dtype=r.dtype, device=r.device)",
     "after": "one = torch.ones((), dtype=r.dtype, )", "why": _DEVICE_METRIC},
    # trrd.py
    {"function": "rlad_pl.objectives.trrd.trrd_loss",
     "before": "metrics.update(dict.fromkeys(TRRD_METRICS, torch.zeros((), dtype=l.dtype, "
               "device=l.device)))",
     "after": "metrics.update(dict.fromkeys(TRRD_METRICS, torch.zeros((), dtype=l.dtype, "
              "device=None)))", "why": _DEVICE_METRIC},
    {"function": "rlad_pl.objectives.trrd.trrd_loss",
     "before": "metrics.update(dict.fromkeys(TRRD_METRICS, torch.zeros((), dtype=l.dtype, "
               "device=l.device)))",
     "after": "metrics.update(dict.fromkeys(TRRD_METRICS, torch.zeros((), dtype=l.dtype, )))",
     "why": _DEVICE_METRIC},
    # objective classes: `progress` is read only by KDRL (its annealed coefficient)
] + [
    {"function": f"rlad_pl.objectives.{module}.{cls}.__call__",
     "before": "progress: float = 0.0) -> tuple[Tensor, dict]:",
     "after": "progress: float = 1.0) -> tuple[Tensor, dict]:",
     "why": f"{cls}.__call__ never reads progress (only KDRL anneals a coefficient with it)"}
    for module, cls in (("base", "Objective"), ("gkd", "GKD"), ("grpo", "GRPO"),
                        ("trrd", "TRRD"))
]
