"""Distributed training through Lightning's strategies (DDP, FSDP1, FSDP2); nothing home-made.

* :class:`FSDP2Strategy` is Lightning's ``ModelParallelStrategy`` set up as plain FSDP2 (all
  processes in one data-parallel mesh dimension) with one extra config key, ``shard_frozen``.
* :func:`shard_models` (called from the module's ``configure_model``) applies
  ``torch.distributed.fsdp.fully_shard`` to each decoder layer of the student and then to its
  root; the teacher / reference are sharded the same way only with ``shard_frozen``.
  Under Lightning's FSDP1 ``FSDPStrategy`` the student is wrapped as one FSDP1 unit instead, so
  Lightning does not wrap the whole LightningModule (whose single root forward would then have to
  contain every rollout and manual backward of a step, which FSDP1 does not allow).
* :func:`gathered` all-gathers a sharded model once for a rollout (or a no-grad scoring pass)
  and reshards it afterwards, instead of one all-gather per layer per decoding step.
* :func:`clip_grad_norm` clips by the global gradient norm over all shards.
* :func:`synced_calls` pads a rank's list of forward/backward chunks to the largest count over
  ranks: DDP all-reduces gradients in every backward and FSDP2 all-gathers in every forward, so
  every rank must make the same number of calls even when ranks keep different numbers of
  completions (zero-variance groups dropped) or evaluate padded shards.
* :func:`real_rows` marks the items of an evaluation batch that ``DistributedSampler`` added as
  padding, so accuracy is over the full evaluation set exactly once.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from lightning.pytorch.strategies import FSDPStrategy, ModelParallelStrategy
from torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel, fully_shard
from torch.utils.data import DistributedSampler


class FSDP2Strategy(ModelParallelStrategy):
    """Lightning's ``ModelParallelStrategy`` as FSDP2 over all processes (``data_parallel_size``
    = nodes x devices, no tensor parallelism), so ``--trainer.devices`` / ``--trainer.num_nodes``
    alone choose the world size.

    Args:
        shard_frozen: shard the frozen teacher / reference like the student (``True``), or keep a
            full copy on every rank (``False``, the default). A replicated frozen model costs its
            full weights on every GPU (8B teacher in bf16: 16 GB) but no communication; a sharded
            one costs ``1 / world_size`` of that outside its scoring pass and one all-gather of
            the whole model per rollout (it is gathered for the pass, so the pass's peak is the
            full weights either way). Shard when the replicated teacher does not fit next to
            the student's rollout and update peak.
        save_distributed_checkpoint: each rank saves its shard (``True``) or rank 0 a full
            checkpoint (``False``).
        process_group_backend: ``nccl`` / ``gloo``; ``None`` = Lightning's choice.
    """

    def __init__(self, shard_frozen: bool = False, save_distributed_checkpoint: bool = True,
                 process_group_backend: str | None = None) -> None:
        super().__init__(data_parallel_size="auto", tensor_parallel_size=1,
                         save_distributed_checkpoint=save_distributed_checkpoint,
                         process_group_backend=process_group_backend)
        self.shard_frozen = shard_frozen

    def setup_environment(self) -> None:
        self._data_parallel_size = self.num_nodes * self.num_processes
        super().setup_environment()


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's transformer blocks: modules whose class is one of the HF model's
    ``_no_split_modules`` (e.g. ``Qwen3DecoderLayer``)."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    return [m for m in model.modules() if type(m).__name__ in names]


def shard(model: torch.nn.Module, mesh) -> None:
    """``fully_shard`` each decoder layer (resharded after forward: ZeRO-3), then the root, which
    holds embeddings, final norm and LM head and stays gathered between forward and backward."""
    layers = decoder_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__}: no decoder layers found to shard "
                         "(the model's _no_split_modules is empty)")
    for layer in layers:
        fully_shard(layer, mesh=mesh, reshard_after_forward=True)
    fully_shard(model, mesh=mesh, reshard_after_forward=False)


def shard_models(module) -> None:
    """Shard ``module.student`` (and with ``shard_frozen`` its ``frozen`` models) over the
    data-parallel mesh when the trainer's strategy is a ``ModelParallelStrategy``; wrap the
    student as one FSDP1 unit under ``FSDPStrategy`` (frozen models stay whole on every rank);
    otherwise do nothing (DDP wraps the module itself)."""
    strategy = module.trainer.strategy
    if isinstance(strategy, FSDPStrategy):
        if not isinstance(module.student, FullyShardedDataParallel):
            module.student = FullyShardedDataParallel(
                module.student, sharding_strategy=strategy.sharding_strategy,
                cpu_offload=strategy.cpu_offload, mixed_precision=strategy.mixed_precision_config,
                device_id=strategy.root_device.index, use_orig_params=True)
        return
    if not isinstance(strategy, ModelParallelStrategy) or isinstance(module.student, FSDPModule):
        return
    mesh = module.device_mesh["data_parallel"]
    shard(module.student, mesh)
    if getattr(strategy, "shard_frozen", False):
        for model in module.frozen.values():
            shard(model, mesh)


@contextmanager
def gathered(model: torch.nn.Module):
    """Full weights of a sharded ``model`` inside the block, which gets the model to call: FSDP2
    all-gathers once per layer on entry; FSDP1 yields its wrapped module with the full weights
    summoned (read-only). No collective runs in the forwards inside, so ranks may run different
    numbers of them (e.g. decoding steps); resharded on exit. Any other model is yielded as is."""
    if isinstance(model, FullyShardedDataParallel):
        with FullyShardedDataParallel.summon_full_params(model, writeback=False):
            yield model.module
        return
    units = [m for m in model.modules() if isinstance(m, FSDPModule)]
    for unit in units:
        unit.set_reshard_after_forward(False, recurse=False)
        unit.unshard()
    try:
        yield model
    finally:
        for unit in units:
            unit.set_reshard_after_forward(unit is not model, recurse=False)  # as in shard()
            unit.reshard()


def clip_grad_norm(model: torch.nn.Module, max_norm: float) -> torch.Tensor:
    """Clip ``model``'s gradients to ``max_norm`` by their global norm, which it returns (FSDP1
    holds flat-parameter shards, so it computes the norm across ranks itself; FSDP2's DTensor
    gradients and DDP's full ones go through torch's function)."""
    if isinstance(model, FullyShardedDataParallel):
        return model.clip_grad_norm_(max_norm)
    return torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)


def max_over_ranks(module, value: int) -> int:
    """The largest ``value`` over all ranks (a collective; ``value`` on a single process)."""
    if module.trainer.world_size == 1:
        return value
    tensor = torch.tensor(value, device=module.device)
    return int(module.trainer.strategy.reduce(tensor, reduce_op="max"))


def synced_calls(module, chunks: list) -> list:
    """``chunks`` followed by ``None``\\ s up to the largest number of chunks of any rank; a rank
    runs :func:`idle_loss` backward for each ``None``."""
    return chunks + [None] * (max_over_ranks(module, len(chunks)) - len(chunks))


def idle_loss(model: torch.nn.Module, device: torch.device) -> torch.Tensor:
    """Zero loss through every parameter (one token): takes part in the collectives of a
    forward/backward without changing any gradient."""
    logits = model(input_ids=torch.zeros(1, 1, dtype=torch.long, device=device),
                   use_cache=False).logits
    return logits.sum() * 0.0


def real_rows(loader, batch_idx: int, count: int) -> torch.Tensor | None:
    """``bool[count]``: False on the items of evaluation batch ``batch_idx`` that
    ``DistributedSampler`` repeated to give every rank the same number of items; ``None`` when
    the loader is not sharded. Local item ``i`` of rank ``r`` is global position
    ``r + i * num_replicas``; positions past the dataset's end are padding."""
    sampler = getattr(loader, "sampler", None)
    if not isinstance(sampler, DistributedSampler) or sampler.drop_last:
        return None
    first = batch_idx * loader.batch_size
    local = torch.arange(first, first + count)
    return sampler.rank + local * sampler.num_replicas < len(sampler.dataset)


def full_state_dict(trainer, pl_module, model: torch.nn.Module) -> dict | None:
    """Full (unsharded, CPU) state dict of ``model``, a submodule of ``pl_module``, on rank 0,
    gathered from DDP / FSDP1 / FSDP2 shards (a collective: every rank calls it); ``None``
    without a process group (the model is whole already)."""
    if not torch.distributed.is_initialized():
        return None
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    prefix = next(name for name, m in pl_module.named_modules() if m is model)
    prefix = f"{prefix}." if prefix else ""
    state = get_model_state_dict(trainer.strategy.model, options=StateDictOptions(
        full_state_dict=True, cpu_offload=True))
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def plain_copy(model: torch.nn.Module, state: dict) -> torch.nn.Module:
    """A new, unwrapped model of ``model``'s HF class and config holding ``state``."""
    model = getattr(model, "module", model)  # FSDP1 wraps, FSDP2 subclasses
    cls = next(c for c in type(model).__mro__ if not issubclass(c, FSDPModule))
    with torch.device("meta"):
        plain = cls(model.config)
    plain.load_state_dict(state, assign=True)
    plain.tie_weights()
    return plain
