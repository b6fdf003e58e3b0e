"""Loading student/teacher models and tokenizers (HF Auto classes), the embedded tiny models."""

from rlad_pl.models.loading import (
    EMBEDDED_DIR,
    check_tokenizers_compatible,
    load_model,
    load_tokenizer,
    resolve_model_path,
)
from rlad_pl.models.weights import cast_weights

__all__ = [
    "EMBEDDED_DIR",
    "cast_weights",
    "check_tokenizers_compatible",
    "load_model",
    "load_tokenizer",
    "resolve_model_path",
]
