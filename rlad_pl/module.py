"""The RL LightningModule: rollout -> score -> advantages -> log-probs -> clipped updates -> log.

`training_step` is the algorithm (DESIGN.md, "Data flow of one training step"); everything else
in this file is a small helper it calls. Optimisation is manual: one training step consumes one
batch of prompts and may take several optimizer steps (``ppo_epochs`` x minibatches), so
``trainer.global_step`` and ``trainer.max_steps`` count optimizer steps (one per rollout with the
defaults).
"""

from __future__ import annotations

import copy
import math
import random
import time
from contextlib import contextmanager
from typing import Literal

import numpy as np
import torch
from lightning.pytorch import LightningModule

from rlad_pl.callbacks.teacher_cache import TeacherLogprobCache
from rlad_pl.errors import ConfigError
from rlad_pl.distributed import (
    clip_grad_norm,
    gathered,
    idle_loss,
    max_over_ranks,
    shard_models,
    synced_calls,
)
from rlad_pl.models import check_tokenizers_compatible, load_model, load_tokenizer
from rlad_pl.objectives import group_advantages, grpo_loss, kdrl_loss, kl_penalty, trrd_loss
from rlad_pl.rollout import (
    HFGenerateEngine,
    Rollout,
    RolloutEngine,
    length_sorted_chunks,
    micro_batched_logprobs,
    sequence_logprobs,
)
from rlad_pl.rollout.kv_decode import KVDecodeEngine
from rlad_pl.tasks import get_task

Method = Literal["rlad", "grpo", "kdrl", "gkd"]
Aggregation = Literal["seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"]
KLEstimator = Literal["k1", "k2", "k3"]

ENGINES = {"hf_generate": HFGenerateEngine, "kv_decode": KVDecodeEngine}

# Stream ids that keep the per-step sampling seeds of different uses apart.
_TRAIN_STREAM, _SHUFFLE_STREAM, _EVAL_STREAM = 1, 2, 3


#: Every TensorBoard tag this module and its callbacks write (``<...>`` is filled in), with its
#: meaning. The README's tag table is generated from this dict; tags are a stable interface.
METRICS: dict[str, str] = {
    "train/reward/mean": "mean task reward R of the step's completions",
    "train/reward/std": "population std of R over the step's completions",
    "train/reward/<component>": "mean of a reward component (K&K: format, answer)",
    "train/accuracy": "fraction of completions the task marks correct",
    "train/advantage/std": "std of the group-relative advantages A",
    "train/zero_variance_frac": "fraction of prompt groups whose G rewards are all equal (no signal)",
    "train/completion_len/mean": "mean completion length in tokens (EOS included)",
    "train/completion_len/max": "longest completion in tokens",
    "train/truncated_frac": "fraction of completions cut at max_new_tokens (no EOS)",
    "train/entropy": "mean token entropy of the student on the updated completions",
    "train/loss": "loss of the update (mean over minibatches)",
    "train/ratio/mean": "mean policy ratio r over real tokens (TRRD: r_TRRD)",
    "train/ratio/min": "smallest ratio r in the step",
    "train/ratio/max": "largest ratio r in the step",
    "train/clip/frac_low": "fraction of tokens clipped at 1 - eps_low (A < 0)",
    "train/clip/frac_high": "fraction of tokens clipped at 1 + eps_high (A > 0)",
    "train/clip/frac_pos_adv": "clipped fraction among tokens with A > 0",
    "train/clip/frac_neg_adv": "clipped fraction among tokens with A < 0",
    "train/trrd/log_ratio_teacher_mean": "rlad: mean student-teacher log-ratio l - l_T",
    "train/trrd/log_ratio_teacher_abs_mean": "rlad: mean absolute student-teacher log-ratio",
    "train/trrd/clamp_active_frac": "rlad: fraction of tokens where the teacher clamp c is active",
    "train/trrd/anchor_stopped_frac": "rlad: tokens clipped under TRRD but not under GRPO "
                                      "(the teacher anchor stopped the update)",
    "train/trrd/anchor_widened_frac": "rlad: tokens clipped under GRPO but not under TRRD "
                                      "(the teacher anchor widened the trust region)",
    "train/kdrl/kd_term": "kdrl: aggregated reverse-KL estimate to the teacher",
    "train/kdrl/kd_coef": "kdrl: lambda_kd at this step",
    "train/gkd/kl_teacher": "gkd: aggregated reverse-KL estimate to the teacher (the loss)",
    "train/kl_ref": "beta > 0: aggregated KL estimate to the reference",
    "train/grad_norm": "global gradient norm before clipping",
    "train/lr": "learning rate",
    "train/skipped_steps": "optimizer steps skipped so far because loss or gradients were "
                           "non-finite",
    "time/rollout_s": "seconds generating the step's completions",
    "time/old_logp_s": "seconds for l_old (only with ppo_epochs > 1 or minibatches)",
    "time/teacher_s": "seconds for teacher log-probs l_T",
    "time/reference_s": "seconds for reference log-probs l_ref",
    "time/update_s": "seconds in forward/backward/optimizer steps",
    "time/step_s": "seconds of the whole training step",
    "time/tokens_per_s": "generated tokens per second of the whole step",
    "teacher/cache_hit_rate": "fraction of rollout sequences served by deduplication",
    "val/accuracy/<subset>": "greedy accuracy on a validation subset (K&K: people3, ...)",
    "val/accuracy/mean": "mean of val/accuracy/<subset> over subsets (the paper's Avg)",
    "val/mean@<n>": "mean accuracy of n samples per problem (eval_temperature, eval_top_p), "
                    "averaged over subsets; per subset under /<subset>",
    "val/pass@<k>": "unbiased pass@k from the n samples, averaged over subsets; per subset "
                    "under /<subset>",
    "test/accuracy/<subset>": "as val/, on the test split (`rlad-pl test`)",
    "test/accuracy/mean": "as val/, on the test split",
    "test/mean@<n>": "as val/, on the test split",
    "test/pass@<k>": "as val/, on the test split",
}


def validate_method_config(h) -> None:
    """Check the method hyper-parameters (before anything is loaded); raise :class:`ConfigError`."""

    def require(ok: bool, key: str, allowed: str) -> None:
        if not ok:
            raise ConfigError(f"model.{key}={h[key]!r}: {allowed}")

    needs_teacher = h.method in ("kdrl", "gkd") or (h.method == "rlad" and h.alpha < 1)
    require(not (needs_teacher and h.teacher is None), "teacher",
            f"method {h.method!r} needs a teacher (HF id, local path or embedded name such as "
            "tiny-kk-teacher); method grpo (or rlad with alpha 1) trains without one")
    require(h.group_size >= (1 if h.method == "gkd" else 2), "group_size",
            "must be an integer >= 2 (group-relative advantages need two completions per prompt)")
    require(0 <= h.alpha <= 1, "alpha", "must lie in [0, 1] (1 = GRPO, 0 = teacher-only anchor)")
    require(0 < h.eps_low < 1, "eps_low", "must lie in (0, 1) (lower clip bound 1 - eps_low)")
    require(h.eps_high > 0, "eps_high", "must be > 0 (upper clip bound 1 + eps_high)")
    require(h.teacher_clip is None or h.teacher_clip > 0, "teacher_clip", "must be > 0 or null")
    require(h.temperature > 0, "temperature", "must be > 0")
    require(0 < h.top_p <= 1, "top_p", "must lie in (0, 1]")
    require(h.max_new_tokens >= 1, "max_new_tokens", "must be >= 1")
    require(h.beta >= 0, "beta", "must be >= 0 (0 = no reference model)")
    require(h.kd_coef >= 0, "kd_coef", "must be >= 0")
    require(h.ppo_epochs >= 1, "ppo_epochs", "must be >= 1")
    require(h.minibatch_size is None or h.minibatch_size >= 1, "minibatch_size",
            "must be >= 1 or null (whole rollout)")
    require(h.micro_batch_size is None or h.micro_batch_size >= 1, "micro_batch_size",
            "must be >= 1 or null (whole minibatch)")
    require(h.logprob_micro_batch_size >= 1, "logprob_micro_batch_size", "must be >= 1")
    require(h.eval_samples >= 0, "eval_samples", "must be >= 0")
    require(h.eval_greedy or h.eval_samples > 0, "eval_greedy",
            "evaluation needs eval_greedy true or eval_samples > 0")


class RLADModule(LightningModule):
    """RL post-training of a student LLM with teacher distillation (RLAD / TRRD) and baselines.

    Args:
        student: the trained policy ``pi_S``: HF id, local folder or embedded short name
            (``tiny-kk-student``).
        teacher: frozen teacher ``pi_T`` (same tokenizer); required by ``rlad``, ``kdrl`` and
            ``gkd``, never loaded by ``grpo`` or ``rlad`` with ``alpha = 1``.
        reference: frozen reference ``pi_ref`` for the ``beta`` KL term; ``None`` = the student's
            initial weights. Loaded only when ``beta > 0``.
        task: task name used for rewards (``knights_knaves``, ``math``); ``None`` = the data's
            task. Must match the task the datamodule provides.
        method: ``rlad`` (TRRD ratio, the paper's method), ``grpo``, ``kdrl`` (GRPO + reverse-KL
            to the teacher), ``gkd`` (on-policy reverse-KL distillation, no task reward in the loss).
        group_size: ``G``, completions sampled per prompt (>= 2 for the reward-based methods).
        temperature: sampling temperature of the training rollouts. The student's (and the
            reference's) log-probs in the objective are those of this sampling policy (logits /
            temperature), so updates stay on-policy; the teacher's are at temperature 1.
        top_p: nucleus sampling threshold of the training rollouts (1.0 = off).
        max_new_tokens: completion length limit (longer completions are truncated).
        rollout_engine: ``hf_generate`` (Hugging Face ``generate``) or ``kv_decode`` (a plain
            KV-cache decoding loop, same distribution, less per-token overhead).
        alpha: TRRD mixing weight between ``pi_old`` (1) and the teacher (0); 1 is GRPO.
        eps_low: lower clip range, ``r >= 1 - eps_low``.
        eps_high: upper clip range, ``r <= 1 + eps_high``.
        teacher_clip: ``c``, clamp of the student-teacher log-ratio in TRRD; ``None`` = no clamp.
        teacher_clip_form: ``ratio`` (the paper: clamp inside the ratio) or ``anchor`` (clamp the
            teacher's offset inside the constant anchor so ``d log r / d l`` stays 1).
        beta: weight of ``KL(pi_S || pi_ref)``; 0 loads no reference model.
        kl_estimator: estimator of the reference KL (``k1``, ``k2``, ``k3``).
        kd_coef: ``lambda_kd`` of KDRL at the first step.
        kd_coef_final: ``lambda_kd`` at ``trainer.max_steps`` (linear anneal); ``None`` = constant.
        kd_estimator: reverse-KL estimator to the teacher for ``kdrl`` and ``gkd``.
        aggregation: how token terms become the loss (``seq-mean-token-mean`` is the paper's).
        sum_norm_constant: the constant of ``seq-mean-token-sum-norm`` (``None`` =
            ``max_new_tokens``).
        advantage_scale: ``std`` (divide by the group std, the paper) or ``none`` (Dr. GRPO).
        drop_zero_variance_groups: leave groups whose rewards are all equal out of the update.
        ppo_epochs: passes over each rollout.
        minibatch_size: completions per optimizer step (``None`` = the whole rollout).
        micro_batch_size: completions per forward/backward inside a minibatch (gradients are
            accumulated, weighted so the loss equals the whole minibatch's; completions of similar
            length go together and padding past the longest is cut); ``None`` = all at once.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        betas: AdamW betas.
        warmup_steps: linear warm-up in optimizer steps.
        lr_schedule: after warm-up: ``constant`` or ``cosine`` (to ``min_lr_ratio * lr`` at
            ``trainer.max_steps``).
        min_lr_ratio: final lr of the cosine schedule as a fraction of ``lr``.
        gradient_clip_val: clip of the global gradient norm (``None`` = measure only).
        logprob_micro_batch_size: sequences per no-grad forward (old, teacher, reference).
        logprob_chunk_size: sequence chunk of the log-softmax (bounds full-vocab fp32 memory).
        eval_greedy: evaluate greedy decoding (``val/accuracy/*``).
        eval_samples: ``n`` sampled completions per evaluation prompt (``mean@n``, ``pass@k``);
            0 = none.
        eval_temperature: sampling temperature at evaluation (paper: 0.6).
        eval_top_p: top-p at evaluation (paper: 0.95).
        eval_max_new_tokens: completion limit at evaluation (``None`` = ``max_new_tokens``).
        seed: seed of the sampling streams; each rollout and evaluation batch gets its own seed
            derived from it, so resumed runs sample exactly as uninterrupted ones.
        dtype: weights dtype of loaded models (``None`` = as saved; e.g. ``bfloat16``).
        trust_remote_code: passed to Hugging Face loading.
    """

    def __init__(
        self,
        student: str = "tiny-kk-student",
        teacher: str | None = "tiny-kk-teacher",
        reference: str | None = None,
        task: str | None = None,
        method: Method = "rlad",
        group_size: int = 8,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 64,
        rollout_engine: Literal["hf_generate", "kv_decode"] = "hf_generate",
        alpha: float = 0.5,
        eps_low: float = 0.2,
        eps_high: float = 0.28,
        teacher_clip: float | None = 1.0,
        teacher_clip_form: Literal["ratio", "anchor"] = "ratio",
        beta: float = 0.0,
        kl_estimator: KLEstimator = "k3",
        kd_coef: float = 5e-3,
        kd_coef_final: float | None = None,
        kd_estimator: KLEstimator = "k2",
        aggregation: Aggregation = "seq-mean-token-mean",
        sum_norm_constant: float | None = None,
        advantage_scale: Literal["std", "none"] = "std",
        drop_zero_variance_groups: bool = True,
        ppo_epochs: int = 1,
        minibatch_size: int | None = None,
        micro_batch_size: int | None = None,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.99),
        warmup_steps: int = 0,
        lr_schedule: Literal["constant", "cosine"] = "constant",
        min_lr_ratio: float = 0.1,
        gradient_clip_val: float | None = 1.0,
        logprob_micro_batch_size: int = 64,
        logprob_chunk_size: int | None = None,
        eval_greedy: bool = True,
        eval_samples: int = 8,
        eval_temperature: float = 0.6,
        eval_top_p: float = 0.95,
        eval_max_new_tokens: int | None = None,
        seed: int = 0,
        dtype: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        validate_method_config(self.hparams)
        self.automatic_optimization = False
        self.tokenizer = load_tokenizer(student, trust_remote_code=trust_remote_code)
        if self.needs_teacher:
            teacher_tokenizer = load_tokenizer(teacher, trust_remote_code=trust_remote_code)
            try:
                check_tokenizers_compatible(self.tokenizer, teacher_tokenizer)
            except ValueError as err:
                raise ConfigError(f"model.teacher={teacher!r}: {err}") from None
        self.engine: RolloutEngine = ENGINES[rollout_engine](self.tokenizer)
        self.student: torch.nn.Module | None = None
        # Frozen models are kept out of the module tree: not trained, not in checkpoints.
        self.frozen: dict[str, torch.nn.Module] = {}
        self.task = None
        self.teacher_cache: TeacherLogprobCache | None = None
        self.rollouts_done = 0
        self.skipped_steps = 0
        self.last_samples: list[dict] = []

    # ----------------------------------------------------------------- what the method needs
    @property
    def needs_teacher(self) -> bool:
        """Whether the objective uses teacher log-probs (not GRPO, not TRRD with alpha = 1)."""
        h = self.hparams
        return h.method in ("kdrl", "gkd") or (h.method == "rlad" and h.alpha < 1)

    @property
    def needs_reference(self) -> bool:
        return self.hparams.beta > 0

    @property
    def needs_old_logp(self) -> bool:
        """Separate ``l_old`` pass: only when the policy moves before the last minibatch's forward."""
        h = self.hparams
        return h.method != "gkd" and (h.ppo_epochs > 1 or h.minibatch_size is not None)

    # ------------------------------------------------------------------------- setup
    def setup(self, stage: str) -> None:
        """Resolve the task (checked against the data) before any model is loaded."""
        data_task = getattr(getattr(self.trainer, "datamodule", None), "task", None)
        wanted = self.hparams.task
        if data_task is not None and not isinstance(data_task, str):
            if wanted is not None and wanted != data_task.name:
                raise ConfigError(
                    f"model.task={wanted!r}: the data provides task {data_task.name!r} "
                    f"(data.task); set model.task to {data_task.name!r} or null")
            self.task = data_task
        else:
            name = wanted or data_task
            if name is None:
                raise ConfigError("model.task: no task given and the datamodule provides none")
            try:
                self.task = get_task(name)
            except (KeyError, ValueError) as err:
                raise ConfigError(f"model.task={name!r}: {err}") from None

    def configure_model(self) -> None:
        """Load the student, and for fitting the teacher / reference the method needs."""
        if self.student is not None:
            return
        h = self.hparams
        self.student = load_model(h.student, dtype=h.dtype, trust_remote_code=h.trust_remote_code)
        fitting = self.trainer.state.fn == "fit"
        if fitting and self.needs_reference:
            reference = (copy.deepcopy(self.student) if h.reference is None else
                         load_model(h.reference, dtype=h.dtype, trust_remote_code=h.trust_remote_code))
            self.frozen["reference"] = reference
        if fitting and self.needs_teacher:
            self.frozen["teacher"] = load_model(h.teacher, dtype=h.dtype,
                                                trust_remote_code=h.trust_remote_code)
        for model in self.frozen.values():
            model.requires_grad_(False).eval()
        self.student.train(fitting)
        shard_models(self)  # FSDP2 under ModelParallelStrategy; before the optimizer is built

    def configure_callbacks(self):
        """Add the teacher log-prob cache when the method needs a teacher and none is configured."""
        if not self.needs_teacher:
            return []
        present = [cb for cb in self.trainer.callbacks if isinstance(cb, TeacherLogprobCache)]
        return [] if present else [TeacherLogprobCache()]

    def on_fit_start(self) -> None:
        for model in self.frozen.values():
            model.to(self.device)
        caches = [cb for cb in self.trainer.callbacks if isinstance(cb, TeacherLogprobCache)]
        self.teacher_cache = caches[0] if caches and self.needs_teacher else None

    def configure_optimizers(self):
        h = self.hparams
        optimizer = torch.optim.AdamW(self.student.parameters(), lr=h.lr, betas=tuple(h.betas),
                                      weight_decay=h.weight_decay)
        total = self.trainer.max_steps

        def factor(step: int) -> float:
            if step < h.warmup_steps:
                return (step + 1) / h.warmup_steps
            if h.lr_schedule == "constant" or total is None or total <= h.warmup_steps:
                return 1.0
            progress = min(1.0, (step - h.warmup_steps) / (total - h.warmup_steps))
            return h.min_lr_ratio + (1 - h.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------------- the algorithm
    def training_step(self, batch: dict, batch_idx: int) -> None:
        h = self.hparams
        G = h.group_size
        times: dict[str, float] = {}
        step_start = time.perf_counter()

        # 1. Rollout: G completions per prompt from the student as it is now (pi_old).
        start = time.perf_counter()
        with self._seeded(_TRAIN_STREAM, self.rollouts_done):
            rollout = self.rollout(batch, num_samples=G, temperature=h.temperature,
                                   top_p=h.top_p, max_new_tokens=h.max_new_tokens)
        times["rollout"] = time.perf_counter() - start

        # 2. Score every completion with the task's verifiable reward.
        records = [r for r in batch["records"] for _ in range(G)]
        scores = self.score(rollout, records)
        R = torch.tensor([s["total"] for s in scores], dtype=torch.float32, device=self.device)

        # 3. Group-relative advantages; groups with equal rewards carry no signal.
        A, zero_variance = group_advantages(R, G, scale=h.advantage_scale)
        keep = zero_variance.new_ones(len(R))
        if h.drop_zero_variance_groups and h.method != "gkd":
            keep = ~zero_variance
        batch_rollout, A_batch = rollout.select(keep.nonzero().flatten()), A[keep]

        # 4. Log-probs on the completion tokens, each only when the objective needs it.
        old_logp = teacher_logp = ref_logp = None
        scored = max_over_ranks(self, A_batch.numel()) > 0  # on any rank: gathers are collective
        if scored and self.needs_old_logp:
            start = time.perf_counter()
            old_logp = self._frozen_logprobs(self.student, batch_rollout)
            times["old_logp"] = time.perf_counter() - start
        if scored and self.needs_teacher:
            start = time.perf_counter()
            with gathered(self.frozen["teacher"]) as teacher:
                teacher_logp = self.teacher_cache.logprobs(
                    teacher, batch_rollout,
                    micro_batch_size=h.logprob_micro_batch_size, chunk_size=h.logprob_chunk_size)
            times["teacher"] = time.perf_counter() - start
        if scored and self.needs_reference:
            start = time.perf_counter()
            ref_logp = self._frozen_logprobs(self.frozen["reference"], batch_rollout)
            times["reference"] = time.perf_counter() - start

        # 5. ppo_epochs x minibatches of clipped policy-gradient updates.
        start = time.perf_counter()
        update_metrics = self.update(batch_rollout, A_batch, old_logp, teacher_logp, ref_logp)
        times["update"] = time.perf_counter() - start
        times["step"] = time.perf_counter() - step_start

        # 6. Log.
        self.rollouts_done += 1
        self._log_step(rollout, scores, R, A, zero_variance, update_metrics, times)
        self._keep_samples(batch, rollout, scores)

    def update(self, rollout: Rollout, A: torch.Tensor, old_logp: torch.Tensor | None,
               teacher_logp: torch.Tensor | None, ref_logp: torch.Tensor | None) -> list[dict]:
        """``ppo_epochs`` passes over the rollout's completions in minibatches, one optimizer step
        each. A minibatch whose loss or gradient norm is non-finite is not applied (counted in
        ``skipped_steps``); with no completions at all one empty step is taken, so
        ``global_step`` advances with every rollout. Returns the applied minibatches' metrics."""
        h = self.hparams
        rows = torch.arange(len(A), device=A.device)
        size = h.minibatch_size or max(len(rows), 1)
        generator = torch.Generator().manual_seed(
            self._stream_seed(_SHUFFLE_STREAM, self.rollouts_done))
        metrics = []
        # every rank takes as many minibatches as the rank with the most (collectives match)
        n_minibatches = max_over_ranks(self, -(-len(rows) // size))
        if n_minibatches == 0:
            self._optimizer_step(apply=False)
            return metrics
        for epoch in range(h.ppo_epochs):
            order = rows
            if h.ppo_epochs > 1 or size < len(rows):
                order = rows[torch.randperm(len(rows), generator=generator).to(rows.device)]
            for begin in range(0, n_minibatches * size, size):
                loss, m = self.backward_minibatch(rollout, order[begin:begin + size], A, old_logp,
                                                  teacher_logp, ref_logp, with_entropy=epoch == 0)
                grad_norm = clip_grad_norm(self.student, h.gradient_clip_val or float("inf"))
                finite = bool(torch.isfinite(loss) and torch.isfinite(grad_norm))
                self._optimizer_step(apply=finite)
                if not finite:
                    self.skipped_steps += 1
                    continue
                metrics.append({**m, "loss": loss, "grad_norm": grad_norm.detach()})
        return metrics

    def backward_minibatch(self, rollout: Rollout, minibatch: torch.Tensor, A: torch.Tensor,
                           old_logp, teacher_logp, ref_logp, *, with_entropy: bool):
        """Gradients of the minibatch's loss, accumulated over micro-batches; returns the
        (detached) loss and the objective's metrics."""
        h = self.hparams
        mask = rollout.completion_mask
        lengths = mask.sum(-1)
        P = rollout.prompt_length
        loss_sum = torch.zeros((), device=self.device)
        parts = []
        chunks = length_sorted_chunks(lengths, minibatch, h.micro_batch_size or max(len(minibatch), 1))
        for micro in synced_calls(self, chunks):
            if micro is None:  # this rank has fewer micro-batches than another one
                self.manual_backward(idle_loss(self.student, self.device))
                continue
            C = max(int(lengths[micro].max()), 1)  # positions past the longest are all padding
            old, teacher, ref = (None if x is None else x[micro, :C]
                                 for x in (old_logp, teacher_logp, ref_logp))
            logp, entropy = sequence_logprobs(
                self.student, rollout.sequences[micro, :P + C], rollout.attention_mask[micro, :P + C],
                P, chunk_size=h.logprob_chunk_size, with_entropy=with_entropy,
                temperature=h.temperature)
            old = logp.detach() if old is None else old
            loss, m = self.objective(logp, old, teacher, ref, A[micro], mask[micro, :C])
            # the share of the minibatch's aggregation this micro-batch carries
            weight = (mask[micro].sum() / mask[minibatch].sum() if h.aggregation == "token-mean"
                      else len(micro) / len(minibatch))
            self.manual_backward(loss * weight)
            loss_sum += loss.detach() * weight
            if entropy is not None:
                m["entropy"] = (entropy * mask[micro, :C]).sum() / mask[micro, :C].sum().clamp(min=1)
            parts.append(m)
        return loss_sum, _merge_metrics(parts)

    def _optimizer_step(self, *, apply: bool) -> None:
        """Optimizer + scheduler step; ``apply=False`` drops the gradients first, so no parameter
        (and no AdamW moment) changes but the step and schedule still advance."""
        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        if not apply:
            optimizer.zero_grad(set_to_none=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()

    def objective(self, logp, old_logp, teacher_logp, ref_logp, A, mask):
        """The chosen method's loss on one minibatch, plus ``beta * KL(pi_S || pi_ref)``."""
        h = self.hparams
        agg = {"aggregation": h.aggregation, "sum_norm_constant": self._sum_norm_constant()}
        clip = {"eps_low": h.eps_low, "eps_high": h.eps_high}
        if h.method == "rlad":
            loss, metrics = trrd_loss(logp, old_logp, teacher_logp, A, mask, alpha=h.alpha,
                                      teacher_clip=h.teacher_clip,
                                      clamp_form=h.teacher_clip_form, **clip, **agg)
        elif h.method == "grpo":
            loss, metrics = grpo_loss(logp, old_logp, A, mask, **clip, **agg)
        elif h.method == "kdrl":
            loss, metrics = kdrl_loss(logp, old_logp, teacher_logp, A, mask, kd_coef=self.kd_coef(),
                                      estimator=h.kd_estimator, **clip, **agg)
            metrics["kdrl/kd_coef"] = torch.tensor(self.kd_coef())
        else:  # gkd: reverse KL to the teacher on the student's own samples, no task reward
            loss = kl_penalty(logp, teacher_logp, mask, estimator=h.kd_estimator, **agg)
            metrics = {"gkd/kl_teacher": loss.detach()}
        if self.needs_reference:
            kl_ref = kl_penalty(logp, ref_logp, mask, estimator=h.kl_estimator, **agg)
            loss = loss + h.beta * kl_ref
            metrics["kl_ref"] = kl_ref.detach()
        return loss, dict(metrics)

    def kd_coef(self) -> float:
        """``lambda_kd`` at the current step (linear from ``kd_coef`` to ``kd_coef_final``)."""
        h = self.hparams
        if h.kd_coef_final is None or not self.trainer.max_steps or self.trainer.max_steps < 1:
            return h.kd_coef
        progress = min(1.0, self.global_step / self.trainer.max_steps)
        return h.kd_coef + (h.kd_coef_final - h.kd_coef) * progress

    # ------------------------------------------------------------------ building blocks
    def rollout(self, batch: dict, *, num_samples: int, temperature: float, top_p: float,
                max_new_tokens: int) -> Rollout:
        """Sample (``temperature > 0``) or decode greedily, student in eval mode, no grad."""
        was_training = self.student.training
        self.student.eval()
        try:
            with gathered(self.student) as student:
                return self.engine.generate(
                    student, batch["input_ids"], batch["attention_mask"],
                    num_samples=num_samples, max_new_tokens=max_new_tokens,
                    temperature=temperature, top_p=top_p, eos_token_id=self.tokenizer.eos_token_id,
                    pad_token_id=self.tokenizer.pad_token_id)
        finally:
            self.student.train(was_training)

    def score(self, rollout: Rollout, records: list[dict]) -> list[dict]:
        """The task's reward of each completion (``records`` aligned with the rollout rows)."""
        return [self.task.score(text, record) for text, record in zip(rollout.texts, records)]

    def _frozen_logprobs(self, model: torch.nn.Module, rollout: Rollout) -> torch.Tensor:
        h = self.hparams
        was_training = model.training
        model.eval()
        try:
            with gathered(model) as full:
                return micro_batched_logprobs(
                    full, rollout.sequences, rollout.attention_mask, rollout.prompt_length,
                    micro_batch_size=h.logprob_micro_batch_size, chunk_size=h.logprob_chunk_size,
                    temperature=h.temperature)
        finally:
            model.train(was_training)

    def _sum_norm_constant(self) -> float | None:
        h = self.hparams
        if h.aggregation != "seq-mean-token-sum-norm":
            return None
        return h.sum_norm_constant or h.max_new_tokens

    # ------------------------------------------------------------------------ evaluation
    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict:
        """Greedy and sampled completions scored per prompt; aggregated by the Evaluation callback."""
        return self.evaluate(batch, batch_idx, dataloader_idx)

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict:
        return self.evaluate(batch, batch_idx, dataloader_idx)

    def evaluate(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict:
        """``{"greedy_correct": bool[B], "sampled_correct": bool[B, n], "records": ...}``."""
        h = self.hparams
        max_new = h.eval_max_new_tokens or h.max_new_tokens
        out: dict = {"records": batch["records"]}
        if h.eval_greedy:
            rollout = self.rollout(batch, num_samples=1, temperature=0.0, top_p=1.0,
                                   max_new_tokens=max_new)
            scores = self.score(rollout, batch["records"])
            out["greedy_correct"] = torch.tensor([s["correct"] for s in scores], device=self.device)
            out["greedy_texts"] = rollout.texts
        if h.eval_samples > 0:
            n = h.eval_samples
            with self._seeded(_EVAL_STREAM, dataloader_idx * 1_000_003 + batch_idx):
                rollout = self.rollout(batch, num_samples=n, temperature=h.eval_temperature,
                                       top_p=h.eval_top_p, max_new_tokens=max_new)
            records = [r for r in batch["records"] for _ in range(n)]
            scores = self.score(rollout, records)
            correct = torch.tensor([s["correct"] for s in scores], device=self.device)
            out["sampled_correct"] = correct.view(-1, n)
        return out

    # ---------------------------------------------------------------- seeds and checkpoints
    def _stream_seed(self, stream: int, index: int) -> int:
        rank = self.global_rank if self._trainer is not None else 0
        return (self.hparams.seed * 1_000_003 + stream * 7_919 + index * 104_729
                + rank * 15_485_863) % (2**63 - 1)

    @contextmanager
    def _seeded(self, stream: int, index: int):
        """Global RNG seeded for one rollout/evaluation batch, restored afterwards."""
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(self._stream_seed(stream, index))
            yield

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["rlad"] = {
            "rollouts_done": self.rollouts_done,
            "skipped_steps": self.skipped_steps,
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate(),
                    "numpy": _numpy_rng_state()},
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("rlad", {})
        self.rollouts_done = state.get("rollouts_done", 0)
        self.skipped_steps = state.get("skipped_steps", 0)
        if "rng" in state:
            torch.set_rng_state(state["rng"]["torch"])
            random.setstate(state["rng"]["python"])
            name, keys, *rest = state["rng"]["numpy"]
            np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))

    # ------------------------------------------------------------------------- logging
    def _log_step(self, rollout, scores, R, A, zero_variance, update_metrics, times) -> None:
        h = self.hparams
        mask = rollout.completion_mask
        lengths = mask.sum(-1).float()
        values = {
            "train/reward/mean": R.mean(),
            "train/reward/std": R.std(unbiased=False),
            "train/accuracy": torch.tensor([float(s["correct"]) for s in scores]).mean(),
            "train/advantage/std": A.std(unbiased=False),
            "train/zero_variance_frac": zero_variance.view(-1, h.group_size)[:, 0].float().mean(),
            "train/completion_len/mean": lengths.mean(),
            "train/completion_len/max": lengths.max(),
            "train/truncated_frac": rollout.truncated.float().mean(),
            "train/skipped_steps": float(self.skipped_steps),
            "train/lr": self.lr_schedulers().get_last_lr()[0],
        }
        for key in scores[0]:
            if key not in ("total", "correct"):
                values[f"train/reward/{key}"] = sum(float(s[key]) for s in scores) / len(scores)
        values.update({f"train/{k}": v for k, v in _merge_metrics(update_metrics).items()})
        for phase, seconds in times.items():
            values[f"time/{phase}_s"] = seconds
        values["time/tokens_per_s"] = rollout.num_tokens / max(times["step"], 1e-9)
        if self.teacher_cache is not None and "teacher" in times:
            values["teacher/cache_hit_rate"] = self.teacher_cache.last_hit_rate
        values = {k: torch.as_tensor(v, dtype=torch.float32).cpu() for k, v in values.items()}
        self.log_dict(values, on_step=True, on_epoch=False, batch_size=len(R))
        self.log("reward", values["train/reward/mean"], prog_bar=True, logger=False)
        self.log("acc", values["train/accuracy"], prog_bar=True, logger=False)

    def _keep_samples(self, batch, rollout, scores, count: int = 4) -> None:
        G = self.hparams.group_size
        self.last_samples = [
            {"prompt": batch["prompts"][i // G], "completion": rollout.texts[i],
             "reward": scores[i]["total"], "correct": scores[i]["correct"]}
            for i in range(0, min(len(scores), count * G), G)
        ]


def _numpy_rng_state() -> tuple:
    """NumPy's global RNG state with plain Python types (checkpoints load with weights_only)."""
    name, keys, *rest = np.random.get_state()
    return (name, keys.tolist(), *rest)


def _merge_metrics(metrics: list[dict]) -> dict:
    """Mean over (micro/mini)batches; ``ratio/min`` and ``ratio/max`` take the min / max."""
    merged = {}
    for key in dict.fromkeys(k for m in metrics for k in m):
        stacked = torch.stack([torch.as_tensor(m[key], dtype=torch.float32)
                               for m in metrics if key in m])
        reduce = {"ratio/min": stacked.min, "ratio/max": stacked.max}.get(key, stacked.mean)
        merged[key] = reduce()
    return merged
