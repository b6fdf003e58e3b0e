"""The trajectory bundle: everything an objective reads of one batch of completions."""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch import Tensor


@dataclass(frozen=True)
class Trajectory:
    """Per-token tensors over completion positions ``[B, T]`` (``advantages`` is ``[B]``).

    Attributes:
        mask: 1 on real completion tokens (EOS included), 0 on padding.
        advantages: ``A``, one per completion.
        old_logp: ``l_old``, the sampling policy's log-probs; ``None`` when the policy has not
            moved since the rollout, so ``l_old`` is the current ``l`` without gradient.
        teacher_logp: ``l_T`` (objectives with ``needs_teacher``).
        ref_logp: ``l_ref`` (only when the module's ``beta > 0``).
        rollout_logp: ``l_rollout``, the rollout engine's own log-probs of the sampled tokens
            (vLLM); differs from ``l_old`` by the engine/trainer numerical mismatch.
        max_new_tokens: the generation budget the completions were sampled under (the default
            constant of the ``seq-mean-token-sum-norm`` aggregation).
    """

    mask: Tensor
    advantages: Tensor
    old_logp: Tensor | None = None
    teacher_logp: Tensor | None = None
    ref_logp: Tensor | None = None
    rollout_logp: Tensor | None = None
    max_new_tokens: int | None = None

    def select(self, rows: Tensor, width: int | None = None) -> Trajectory:
        """The completions ``rows``, their first ``width`` positions (all when ``None``)."""

        def take(x: Tensor | None) -> Tensor | None:
            return None if x is None else x[rows, :width]

        return replace(self, mask=take(self.mask), advantages=self.advantages[rows],
                       old_logp=take(self.old_logp), teacher_logp=take(self.teacher_logp),
                       ref_logp=take(self.ref_logp), rollout_logp=take(self.rollout_logp))

    def old_or(self, logp: Tensor) -> Tensor:
        """``l_old``: the stored one, or ``l`` detached when the policy has not moved."""
        return logp.detach() if self.old_logp is None else self.old_logp
