"""Re-store a saved model's safetensors weights in another dtype (bf16 halves a package)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported when weights are cast, not with this package
    import torch


def cast_weights(folder: str | Path, dtype: torch.dtype | str) -> None:
    """Rewrite `folder`/model.safetensors with every tensor in `dtype`. The config keeps its
    dtype, so `load_model` still returns the model in that dtype (the rounded weights upcast)."""
    import torch
    from safetensors.torch import load_file, save_file

    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    weights = Path(folder) / "model.safetensors"
    state = load_file(weights)
    save_file({k: v.to(dtype).contiguous() for k, v in state.items()}, weights,
              metadata={"format": "pt"})
