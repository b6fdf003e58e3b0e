"""rlad-pl: RL post-training of LLMs with teacher distillation (RLAD / TRRD) on PyTorch Lightning."""

__version__ = "0.1.0"
