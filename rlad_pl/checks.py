"""The RL module's and the objectives' value checks on plain settings (anything with the
attributes), importable without torch or Lightning: :class:`~rlad_pl.module.RLADModule` and each
objective class run them when they are built and the CLI's pre-flight runs them on the config
before anything heavy is imported, so both report the same one-line :class:`ConfigError`."""

from __future__ import annotations

from rlad_pl.errors import ConfigError


def require(ok: bool, key: str, value, allowed: str) -> None:
    """One-line :class:`ConfigError` for ``model.init_args.<key>`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"model.init_args.{key}={value!r}: {allowed}")


def validate_sampling(sampling, key: str, *, min_samples: int = 1) -> None:
    """A bad sampling setting (``key``: its config group; ``sampling``: a ``SamplingSettings``)."""
    require(sampling.num_samples >= min_samples, f"{key}.num_samples", sampling.num_samples,
            f"must be an integer >= {min_samples}" + (
                " (group-relative advantages need two completions per prompt)"
                if min_samples > 1 else ""))
    require(sampling.temperature > 0, f"{key}.temperature", sampling.temperature, "must be > 0")
    require(0 < sampling.top_p <= 1, f"{key}.top_p", sampling.top_p, "must lie in (0, 1]")
    require(sampling.max_new_tokens >= 1, f"{key}.max_new_tokens", sampling.max_new_tokens,
            "must be >= 1")


def validate_rl_settings(h, sampling, evaluation, optimization, *, objective: str,
                         needs_teacher: bool, uses_reward: bool) -> None:
    """Every setting of the RL module (``h``: its plain arguments; the components as built)
    for an objective named ``objective`` with the given needs."""
    require(not (needs_teacher and h.teacher is None), "teacher", h.teacher,
            f"objective {objective} needs a teacher (HF id, local path or embedded name such as "
            "tiny-kk-teacher); GRPO (or TRRD with alpha 1) trains without one")
    validate_sampling(sampling, "sampling", min_samples=2 if uses_reward else 1)
    optimization.validate()
    e = evaluation
    require(e.samples >= 0, "evaluation.samples", e.samples, "must be >= 0")
    require(e.greedy or e.samples > 0, "evaluation.greedy", e.greedy,
            "evaluation needs greedy true or samples > 0")
    require(e.temperature > 0, "evaluation.temperature", e.temperature, "must be > 0")
    require(0 < e.top_p <= 1, "evaluation.top_p", e.top_p, "must lie in (0, 1]")
    require(e.max_new_tokens is None or e.max_new_tokens >= 1, "evaluation.max_new_tokens",
            e.max_new_tokens, "must be >= 1 or null (= sampling.max_new_tokens)")
    require(h.beta >= 0, "beta", h.beta, "must be >= 0 (0 = no reference model)")
    require(h.ppo_epochs >= 1, "ppo_epochs", h.ppo_epochs, "must be >= 1")
    require(h.minibatch_size is None or h.minibatch_size >= 1, "minibatch_size",
            h.minibatch_size, "must be >= 1 or null (whole rollout)")
    require(h.micro_batch_size is None or h.micro_batch_size >= 1, "micro_batch_size",
            h.micro_batch_size, "must be >= 1 or null (whole minibatch)")
    require(h.logprob_micro_batch_size >= 1, "logprob_micro_batch_size",
            h.logprob_micro_batch_size, "must be >= 1")


# ----------------------------------------------------------------------------- objectives
AGGREGATIONS = ("seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm")
CLAMP_FORMS = ("ratio", "anchor")
ESTIMATORS = ("k1", "k2", "k3")


def require_objective(ok: bool, key: str, value, allowed: str) -> None:
    """:func:`require` for ``model.init_args.objective.init_args.<key>``."""
    require(ok, f"objective.init_args.{key}", value, allowed)


def validate_objective(s) -> None:
    """Every objective: how token terms become the loss."""
    require_objective(s.aggregation in AGGREGATIONS, "aggregation", s.aggregation,
                      f"must be one of {', '.join(AGGREGATIONS)}")
    require_objective(s.sum_norm_constant is None or s.sum_norm_constant > 0,
                      "sum_norm_constant", s.sum_norm_constant,
                      "must be > 0 or null (= max_new_tokens)")


def validate_clipped(s) -> None:
    """The clipped-ratio objectives (GRPO, TRRD, KDRL)."""
    validate_objective(s)
    require_objective(0 < s.eps_low < 1, "eps_low", s.eps_low,
                      "must lie in (0, 1) (lower clip 1 - eps_low)")
    require_objective(s.eps_high > 0, "eps_high", s.eps_high,
                      "must be > 0 (upper clip bound 1 + eps_high)")
    require_objective(s.rollout_is_cap is None or s.rollout_is_cap > 0, "rollout_is_cap",
                      s.rollout_is_cap, "must be > 0 or null (off)")


def validate_trrd(s) -> None:
    validate_clipped(s)
    require_objective(0 <= s.alpha <= 1, "alpha", s.alpha,
                      "must lie in [0, 1] (1 = GRPO, 0 = teacher-only anchor)")
    require_objective(s.teacher_clip is None or s.teacher_clip > 0, "teacher_clip",
                      s.teacher_clip, "must be > 0 or null (no clamp)")
    require_objective(s.clamp_form in CLAMP_FORMS, "clamp_form", s.clamp_form,
                      f"must be one of {', '.join(CLAMP_FORMS)}")


def trrd_needs_teacher(s) -> bool:
    """At ``alpha = 1`` TRRD is GRPO exactly and loads no teacher."""
    return s.alpha < 1


def validate_kdrl(s) -> None:
    validate_clipped(s)
    require_objective(s.kd_coef >= 0, "kd_coef", s.kd_coef, "must be >= 0")
    require_objective(s.kd_coef_final is None or s.kd_coef_final >= 0, "kd_coef_final",
                      s.kd_coef_final, "must be >= 0 or null (constant kd_coef)")
    validate_estimator(s)


def validate_estimator(s) -> None:
    require_objective(s.estimator in ESTIMATORS, "estimator", s.estimator,
                      f"must be one of {', '.join(ESTIMATORS)}")


def validate_gkd(s) -> None:
    validate_objective(s)
    validate_estimator(s)


# the shipped objectives' checks by class path; whether one needs a teacher is its class
# attribute ``needs_teacher``, except where that depends on the settings (TRRD's property)
OBJECTIVE_CHECKS = {
    "rlad_pl.objectives.trrd.TRRD": validate_trrd,
    "rlad_pl.objectives.grpo.GRPO": validate_clipped,
    "rlad_pl.objectives.kdrl.KDRL": validate_kdrl,
    "rlad_pl.objectives.gkd.GKD": validate_gkd,
}
NEEDS_TEACHER = {"rlad_pl.objectives.trrd.TRRD": trrd_needs_teacher}
