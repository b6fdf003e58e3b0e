"""The RL module's value checks on plain settings (anything with the attributes), importable
without torch or Lightning: :class:`~rlad_pl.module.RLADModule` runs them when it is built and
the CLI's pre-flight runs them on the config before anything heavy is imported, so both report
the same one-line :class:`ConfigError`."""

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
