"""Teacher log-probs for a rollout: computed once, without grad, deduplicated; by the local teacher
(micro-batched, each prompt run once) or by a teacher server (``model.teacher: http://...``)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from lightning.pytorch import Callback
from lightning.pytorch.callbacks import ModelCheckpoint

from rlad_pl.distributed import gathered, max_over_ranks
from rlad_pl.errors import ConfigError
from rlad_pl.rollout import (
    GroupDone,
    Rollout,
    micro_batched_logprobs,
    shared_prompt_logprobs,
)
from rlad_pl.rollout.remote_teacher import (
    RemoteTeacher,
    TeacherServer,
    TeacherServerError,
    is_server_url,
)
from rlad_pl.rollout.scoring import first_occurrences

log = logging.getLogger(__name__)


class TeacherLogprobCache(Callback):
    """Serves ``l_T`` (teacher log-probs on the completion tokens) of the current rollout.

    What it caches and when: nothing across steps (every rollout's completions are new). Within
    one rollout it scores each distinct sequence once: the module asks once per rollout and keeps
    the result in the step's ``Trajectory`` for every update epoch and minibatch, and identical
    sequences (frequent with short answers and ``G`` samples per prompt) are scored once and
    copied to their rows (``teacher/cache_hit_rate`` is the copied share). A local teacher
    prefills each prompt once for its distinct completions
    (:func:`~rlad_pl.rollout.shared_prompt_logprobs`) instead of once per row. The module adds
    this callback only when its objective needs a teacher (never for GRPO or TRRD with
    ``alpha = 1``); list it under ``trainer.callbacks`` to change its settings.

    With a teacher server (``model.teacher: http://host:port``, settings in
    ``model.teacher_server``) the distinct sequences go to the server
    (:class:`~rlad_pl.rollout.remote_teacher.RemoteTeacher`), each rank its own rows. Before
    fitting, the server is checked (reachable, serves the model, tokenizes like the student: a
    one-line :class:`~rlad_pl.errors.ConfigError` otherwise). A server that fails a request after
    its retries stops the run: every rank raises
    :class:`~rlad_pl.rollout.remote_teacher.TeacherServerError` and a checkpoint of the state
    before the failed step is saved as ``last.ckpt`` in the ModelCheckpoint folder (else
    ``teacher-server-down.ckpt`` in the trainer's root folder), so ``--ckpt_path last`` repeats
    the failed step once the server is back.

    Overlap: with a server and a rollout engine that reports finished prompt groups
    (``kv_decode``), the module passes :meth:`overlap_listener` to the engine, so each group's
    sequences go to the server the moment they are complete, while the rest of the rollout still
    decodes; :meth:`logprobs` then only collects (and sends what is left). The scores are the
    same, they arrive earlier: ``time/teacher_s`` is then the wait for them once the step asks
    (after generation and reward scoring), and ``teacher/overlap_frac`` the share of distinct
    sequences already answered at that moment. ``model.teacher_server.overlap: false`` turns it
    off.

    Args:
        micro_batch_size: sequences per local teacher forward (``None``: the module's
            ``logprob_micro_batch_size``).
        dedup: score identical sequences once (a teacher server's client always does).
        share_prompts: local teacher: prefill each prompt once for its completions (``False``:
            every sequence runs in full, as plain forwards; for comparisons).
    """

    def __init__(self, micro_batch_size: int | None = None, dedup: bool = True,
                 share_prompts: bool = True) -> None:
        self.micro_batch_size = micro_batch_size
        self.dedup = dedup
        self.share_prompts = share_prompts
        self.remote: RemoteTeacher | None = None
        self._module = None
        self._consumed_prompts: int | None = None  # the data stream after the last full step
        self._rollout_id: int | None = None
        self._teacher_logp: torch.Tensor | None = None
        self.last_seconds = 0.0
        self.last_hit_rate = 0.0
        self.last_overlap_share = 0.0
        self.calls = 0

    # ------------------------------------------------------------------------ the server
    def connect(self, pl_module) -> None:
        """Connect to and check the teacher server when the module's teacher is a URL (the
        module calls this from ``configure_callbacks`` when fitting, before any data or model is
        loaded; ``setup`` calls it otherwise). Raises a one-line ConfigError."""
        self._module = pl_module
        hparams = getattr(pl_module, "hparams", {})
        url = hparams.get("teacher")
        if self.remote is not None or not is_server_url(url) or not getattr(
                pl_module, "needs_teacher", True):
            return
        options = (getattr(pl_module, "teacher_server", None) or hparams.get("teacher_server")
                   or TeacherServer())
        if isinstance(options, dict):
            options = TeacherServer(**options)
        remote = RemoteTeacher(url, options)
        try:
            remote.check(pl_module.tokenizer)
        except ValueError as err:
            raise ConfigError(f"model.init_args.teacher={url!r}: {err}") from None
        self.remote = remote

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage == "fit":
            self.connect(pl_module)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if self.remote is not None:
            self.remote.close()

    # ------------------------------------------------------------------------- scoring
    def overlap_listener(self) -> GroupDone | None:
        """For the rollout engine's ``on_group_done``: sends each finished prompt group to the
        teacher server at once. ``None`` without a server or with ``overlap`` off (a local
        teacher would compete with generation for the same device)."""
        if self.remote is None or not self.remote.options.overlap:
            return None
        remote = self.remote
        return lambda group, sequences, attention_mask: remote.send(sequences, attention_mask)

    def logprobs(self, teacher: torch.nn.Module | None, rollout: Rollout, *,
                 micro_batch_size: int, chunk_size: int | None = None) -> torch.Tensor:
        """``l_T [N, C]`` for ``rollout`` (computed on the first call for that rollout).
        ``teacher``: the local teacher (``None`` with a teacher server)."""
        if self._rollout_id == id(rollout) and self._teacher_logp is not None:
            return self._teacher_logp
        start = time.perf_counter()
        sequences, attention_mask = rollout.sequences, rollout.attention_mask
        if self.dedup:
            rows, inverse = first_occurrences(sequences)
        else:
            rows = inverse = torch.arange(sequences.shape[0], device=sequences.device)
        if self.remote is not None:
            logp = self._remote_logprobs(sequences[rows], attention_mask[rows],
                                         rollout.prompt_length)
        else:
            if teacher is None:
                raise RuntimeError("TeacherLogprobCache: no local teacher and no teacher server")
            run = shared_prompt_logprobs if self.share_prompts else micro_batched_logprobs
            with gathered(teacher) as full:
                logp = run(full, sequences[rows], attention_mask[rows], rollout.prompt_length,
                           micro_batch_size=self.micro_batch_size or micro_batch_size,
                           chunk_size=chunk_size)
        self._teacher_logp = logp[inverse]
        self._rollout_id = id(rollout)
        self.last_seconds = time.perf_counter() - start
        self.last_hit_rate = 1.0 - len(rows) / max(sequences.shape[0], 1)  # 0 rows: a rank idle
        self.last_overlap_share = self.remote.last_early_share if self.remote else 0.0
        self.calls += 1
        return self._teacher_logp

    def _remote_logprobs(self, sequences, attention_mask, prompt_length) -> torch.Tensor:
        """The server's scores; a failure on any rank raises on every rank (so all of them
        reach the checkpoint together)."""
        failure = None
        logp = None
        try:
            logp = self.remote.logprobs(sequences, attention_mask, prompt_length)
        except TeacherServerError as err:
            failure = err
        module = self._module
        synced = module is not None and getattr(module, "_trainer", None) is not None
        if synced and max_over_ranks(module, int(failure is not None)):
            failure = failure or TeacherServerError(self.remote.url,
                                                    "another rank's request failed")
        if failure is not None:
            raise failure
        return logp

    # ------------------------------------------------------------ stopping on server loss
    def on_train_start(self, trainer, pl_module) -> None:
        self._consumed_prompts = getattr(trainer.datamodule, "consumed_prompts", None)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """Drop the finished rollout's tensors (and requests sent early that no step collected);
        remember where the data stream stands."""
        self._rollout_id, self._teacher_logp = None, None
        if self.remote is not None:
            self.remote.forget()
        self._consumed_prompts = getattr(trainer.datamodule, "consumed_prompts", None)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        """After a teacher server failure: save the state before the failed step."""
        if not isinstance(exception, TeacherServerError) or exception.checkpoint:
            return
        path = self.checkpoint_path(trainer)
        data = trainer.datamodule
        # The failed step's prompts were taken from the stream already: rewind to the last full
        # step so the resumed run repeats that step with the same prompts.
        consumed = getattr(data, "consumed_prompts", None)
        if consumed is not None and self._consumed_prompts is not None:
            data.consumed_prompts = self._consumed_prompts
        # Lightning adds 1 to its logging step when it restarts from a checkpoint saved inside a
        # step (as ModelCheckpoint's are, before the step's count); count the failed step out.
        loop = trainer.fit_loop.epoch_loop
        stepped = getattr(loop, "_batches_that_stepped", None)
        if stepped:
            loop._batches_that_stepped = stepped - 1
        try:
            trainer.save_checkpoint(path)
        finally:
            if consumed is not None:
                data.consumed_prompts = consumed
            if stepped:
                loop._batches_that_stepped = stepped
        exception.checkpoint = path
        log.error("%s", exception)

    @staticmethod
    def checkpoint_path(trainer) -> str:
        """``last.ckpt`` of the first ModelCheckpoint with a folder, else
        ``<default_root_dir>/teacher-server-down.ckpt``."""
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.dirpath:
                name = callback.CHECKPOINT_NAME_LAST + callback.FILE_EXTENSION
                return str(Path(callback.dirpath) / name)
        return str(Path(trainer.default_root_dir) / "teacher-server-down.ckpt")
