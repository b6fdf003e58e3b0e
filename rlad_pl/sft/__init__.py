"""Supervised fine-tuning: the module (`SFTModule`), its data (`SFTDataModule`) and the
offline-distillation sampler (`rlad_pl.sft.offline_distill`).

Run: `python -m rlad_pl.sft fit --config configs/sft_teacher.yaml` (the `rlad-pl` command line:
`rlad-pl fit --config configs/sft_teacher.yaml` is the same).
"""

from rlad_pl.sft.data import SFTDataModule, collate_pairs, length_grouped_batches
from rlad_pl.sft.module import SFTModule

__all__ = ["SFTDataModule", "SFTModule", "collate_pairs", "length_grouped_batches"]
