"""How much of one GRPO step's gradient is signal? Gradient noise of GRPO at the warm start.

    OMP_NUM_THREADS=1 python benchmarks/grpo_gradient_noise.py --config configs/math.yaml \
        --batches 32

For ``--batches`` independent training batches of the config's DataModule (``prompts_per_step``
prompts x ``group_size`` completions, the config's temperature and length), the GRPO loss of the
rlad-pl objective at the warm-start weights (on-policy: ratio 1, groups without reward variance
dropped, as in the module) is back-propagated and the gradient kept. From the K per-batch
gradients ``g_k`` (batch of b prompts): signal ``|G|^2`` = mean of ``g_i . g_j`` over pairs
``i != j`` (unbiased; jackknife standard error), per-batch noise ``tr S = mean |g_k|^2 - |G|^2``,
the noise scale ``B = b tr S / |G|^2``
in prompts (McCandlish et al. 2018, "An Empirical Model of Large-Batch Training": a step with
fewer than ~B prompts is noise-dominated), and the mean pairwise cosine of the ``g_k``.
The same for the supervised (SFT) gradient on the problems' reference solutions, for scale.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import time
from datetime import datetime, timezone

import torch
import yaml

from rlad_pl.data import PromptDataModule
from rlad_pl.models import load_model, load_tokenizer
from rlad_pl.objectives import group_advantages, grpo_loss
from rlad_pl.rollout import SamplingSettings, sequence_logprobs
from rlad_pl.rollout.kv_decode import KVDecodeEngine


def flat_grad(model) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def noise_stats(grads: list[torch.Tensor], batch: int) -> dict:
    """Signal |G|^2 as the mean of g_i . g_j over pairs i != j (unbiased for independent
    batches), its jackknife standard error, per-batch noise tr S, and the noise scale."""
    K = len(grads)
    X = torch.stack(grads).double()
    gram = X @ X.T
    total, diag = gram.sum(), gram.diagonal()

    def pair_mean(drop: int | None = None):
        if drop is None:
            return (total - diag.sum()) / (K * (K - 1))
        s = total - 2 * gram[drop].sum() + gram[drop, drop] - (diag.sum() - diag[drop])
        return s / ((K - 1) * (K - 2))

    signal = pair_mean()
    loo = torch.stack([pair_mean(k) for k in range(K)])
    se = ((K - 1) / K * ((loo - loo.mean()) ** 2).sum()).sqrt()
    tr_s = diag.mean() - signal  # E|g_k|^2 = |G|^2 + tr S
    norms = diag.sqrt()
    cos = (gram / norms[:, None] / norms[None, :])
    return {"batches": K, "prompts_per_batch": batch,
            "grad_norm_per_batch": float(norms.mean()),
            "signal_sq": float(signal), "signal_sq_se": float(se),
            "signal_norm": float(signal.clamp(min=0).sqrt()),
            "noise_scale_prompts": float(batch * tr_s / signal) if signal > 0 else float("inf"),
            "noise_scale_prompts_if_signal_plus_2se": float(batch * tr_s / (signal + 2 * se)),
            "mean_pairwise_cosine": float((cos.sum() - K) / (K * (K - 1)))}


@torch.no_grad()
def expected_reward(model, tokenizer, task, records, n: int, T: float, max_new: int,
                    top_p: float) -> dict:
    """Mean reward and accuracy of n samples per record (seeded: the same uniforms for every
    policy, so two nearby policies are compared on paired samples), and greedy accuracy."""
    from rlad_pl.evaluation import score_records

    torch.manual_seed(123)
    sampled = score_records(task, model, tokenizer, records, num_samples=n, temperature=T,
                            top_p=top_p, max_new_tokens=max_new, batch_size=50)
    greedy = score_records(task, model, tokenizer, records, max_new_tokens=max_new,
                           batch_size=100)
    flat = [s for group in sampled for s in group]
    return {"reward": sum(s["total"] for s in flat) / len(flat),
            "accuracy": sum(s["correct"] for s in flat) / len(flat),
            "greedy_accuracy": sum(g[0]["correct"] for g in greedy) / len(greedy)}


def probe(model, tokenizer, task, dm, rl, sft, args, T, max_new, top_p) -> dict:
    """Expected validation reward after one step of norm s from the warm start along: the
    ascent direction of the mean GRPO gradient (-g, the loss is -J), its opposite, a random
    direction, and the mean SFT descent direction."""
    records = [r for r, _ in dm.splits["val"]]
    params = [p for p in model.parameters() if p.grad is not None]
    start = [p.detach().clone() for p in params]
    gen = torch.Generator().manual_seed(7)
    random_dir = torch.randn(sum(p.numel() for p in params), generator=gen)
    directions = {"grpo_ascent": -torch.stack(rl).mean(0), "grpo_descent": torch.stack(rl).mean(0),
                  "random": random_dir, "sft_descent": -torch.stack(sft).mean(0)}
    model.eval()
    out = {"warm_start": expected_reward(model, tokenizer, task, records, args.probe_samples, T,
                                         max_new, top_p)}
    print("probe warm start", out["warm_start"], flush=True)
    for name in args.probe_directions:
        d = directions[name]
        for norm in args.probe:
            step = d / d.norm() * norm
            offset = 0
            for p, p0 in zip(params, start, strict=True):
                p.data.copy_(p0 + step[offset:offset + p.numel()].view_as(p))
                offset += p.numel()
            out[f"{name}@{norm}"] = expected_reward(model, tokenizer, task, records,
                                                    args.probe_samples, T, max_new, top_p)
            print("probe", name, norm, out[f"{name}@{norm}"], flush=True)
    for p, p0 in zip(params, start, strict=True):
        p.data.copy_(p0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/math.yaml")
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--temperature", type=float, help="override the config's temperature")
    ap.add_argument("--group-size", type=int, help="override the config's group_size")
    ap.add_argument("--probe", type=float, nargs="*", default=[],
                    help="step norms: move the warm start along the mean gradients and measure "
                         "the expected reward on the validation split")
    ap.add_argument("--probe-samples", type=int, default=8)
    ap.add_argument("--probe-directions", nargs="+",
                    default=["grpo_ascent", "grpo_descent", "random", "sft_descent"])
    ap.add_argument("--out")
    args = ap.parse_args()
    with open(args.config) as f:
        config = yaml.safe_load(f)
    m, d = config["model"]["init_args"], config["data"]["init_args"]
    sampling = m.get("sampling", m)  # grouped layout (sampling: ...) or the older flat one
    G = args.group_size or sampling.get("num_samples", sampling.get("group_size"))
    T = args.temperature or sampling.get("temperature", 1.0)
    max_new, top_p = sampling["max_new_tokens"], sampling.get("top_p", 1.0)
    tokenizer = load_tokenizer(m["student"])
    model = load_model(m["student"]).float()
    dm = PromptDataModule(**d)
    dm.setup("fit")
    task, engine = dm.task, KVDecodeEngine(tokenizer)
    start = time.time()
    torch.manual_seed(0)
    rl, sft, rewards = [], [], []
    for batch in itertools.islice(dm.train_stream(rank=0, world_size=1), args.batches):
        model.eval()
        with torch.no_grad():
            rollout = engine.generate(model, batch["input_ids"], batch["attention_mask"],
                                      SamplingSettings(num_samples=G, temperature=T, top_p=top_p,
                                                       max_new_tokens=max_new))
        records = [r for r in batch["records"] for _ in range(G)]
        R = torch.tensor([task.score(t, r)["total"] for t, r in zip(rollout.texts, records,
                                                                    strict=True)])
        rewards.append(float(R.mean()))
        A, zero = group_advantages(R, G)
        kept = rollout.select((~zero).nonzero().flatten())
        model.train()
        model.zero_grad(set_to_none=True)
        logp, _ = sequence_logprobs(model, kept.sequences, kept.attention_mask,
                                    kept.prompt_length, temperature=T)
        loss, _ = grpo_loss(logp, logp.detach(), A[~zero], kept.completion_mask)
        loss.backward()
        rl.append(flat_grad(model))
        # supervised gradient on the reference solutions of the same prompts
        model.zero_grad(set_to_none=True)
        pairs = [(tokenizer(task.prompt(r), add_special_tokens=False)["input_ids"],
                  tokenizer(task.sft_target(r, "dfs_explicit" if task.name ==
                                          "knights_knaves" else "steps"),
                            add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])
                 for r in batch["records"]]
        width = max(len(p) + len(t) for p, t in pairs)
        ids = torch.full((len(pairs), width), tokenizer.pad_token_id)
        labels = torch.full((len(pairs), width), -100)
        mask = torch.zeros((len(pairs), width), dtype=torch.long)
        for i, (p, t) in enumerate(pairs):
            ids[i, :len(p) + len(t)] = torch.tensor(p + t)
            labels[i, len(p):len(p) + len(t)] = torch.tensor(t)
            mask[i, :len(p) + len(t)] = 1
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        sft.append(flat_grad(model))
    b = d["prompts_per_step"]
    result = {"config": args.config, "temperature": T, "group_size": G,
              "seconds": round(time.time() - start, 1),
              "date": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
              "machine": f"{platform.platform()}, torch {torch.__version__}",
              "mean_train_reward": sum(rewards) / len(rewards),
              "grpo": noise_stats(rl, b), "sft_reference_solutions": noise_stats(sft, b)}
    if args.probe:
        result["probe"] = probe(model, tokenizer, task, dm, rl, sft, args, T, max_new, top_p)
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
