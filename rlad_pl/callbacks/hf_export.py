"""Export the trained policy as a plain Hugging Face folder at the end of fit."""

from __future__ import annotations

import os

from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_info

from rlad_pl.distributed import full_state_dict, plain_copy


class HFExport(Callback):
    """``save_pretrained`` (safetensors) of the module's ``student`` (or ``model``) and tokenizer,
    loadable with ``AutoModelForCausalLM.from_pretrained``.

    Args:
        dirpath: output folder; ``None`` = ``<log_dir>/hf_model``.
    """

    def __init__(self, dirpath: str | None = None) -> None:
        self.dirpath = dirpath

    def on_fit_end(self, trainer, pl_module) -> None:
        path = self.dirpath or os.path.join(trainer.log_dir or trainer.default_root_dir, "hf_model")
        model = getattr(pl_module, "student", None) or pl_module.model
        state = full_state_dict(trainer, pl_module, model)  # collective under DDP / FSDP
        if trainer.is_global_zero:
            model.save_pretrained(path, safe_serialization=True) if state is None else \
                plain_copy(model, state).save_pretrained(path, safe_serialization=True)
            pl_module.tokenizer.save_pretrained(path)
            rank_zero_info(f"exported the trained model to {path}")
        trainer.strategy.barrier("hf_export")
