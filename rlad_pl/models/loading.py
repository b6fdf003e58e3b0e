"""Model and tokenizer loading through the Hugging Face Auto classes.

Short names (`tiny-kk-teacher`, ...) resolve to folders shipped in `rlad_pl/embedded/`; any
other string (a HF id or a local path) is passed to `from_pretrained` unchanged.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rlad_pl.errors import ConfigError

if TYPE_CHECKING:  # transformers is imported when a model is loaded, not with this module
    import torch
    from transformers import PreTrainedModel

EMBEDDED_DIR = Path(__file__).resolve().parent.parent / "embedded"


def resolve_model_path(name_or_path: str) -> str:
    """Folder of an embedded model for a short name, else `name_or_path` unchanged."""
    name = str(name_or_path)
    if "/" not in name and any((EMBEDDED_DIR / name / f).is_file()
                               for f in ("config.json", "tokenizer.json")):
        return str(EMBEDDED_DIR / name)
    return name


def load_model(name_or_path: str, *, dtype: torch.dtype | str | None = None,
               trust_remote_code: bool = False,
               attn_implementation: str | None = None) -> PreTrainedModel:
    """A causal LM from safetensors weights (never pickle); ``attn_implementation`` chooses the
    attention kernel (``None``: transformers' default). A missing folder, an unknown id or an
    unreachable hub raise a one-line :class:`ConfigError`."""
    import torch
    from transformers import AutoModelForCausalLM

    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    kwargs = {"dtype": dtype} if dtype is not None else {}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    with _clear_errors("model", name_or_path):
        return AutoModelForCausalLM.from_pretrained(
            resolve_model_path(name_or_path), trust_remote_code=trust_remote_code,
            use_safetensors=True, **kwargs)


def load_tokenizer(name_or_path: str, *, trust_remote_code: bool = False):
    """A tokenizer with left padding and a pad token (falls back to eos)."""
    from transformers import AutoTokenizer

    with _clear_errors("tokenizer", name_or_path):
        tok = AutoTokenizer.from_pretrained(resolve_model_path(name_or_path),
                                            trust_remote_code=trust_remote_code)
    tok.padding_side = "left"
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise ValueError(f"tokenizer {name_or_path!r} has neither a pad nor an eos token")
        tok.pad_token = tok.eos_token
    return tok


@contextmanager
def _clear_errors(kind: str, name: str):
    """``from_pretrained``'s errors for a bad path or id (OSError with a long explanation, or
    huggingface_hub's validation error) as one line."""
    try:
        yield
    except ConfigError:
        raise
    except (OSError, ValueError) as err:
        hub_error = type(err).__name__ in ("HFValidationError", "RepositoryNotFoundError",
                                           "LocalEntryNotFoundError", "GatedRepoError")
        if not (isinstance(err, OSError) or hub_error):
            raise
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
        raise ConfigError(f"{kind} {name!r} cannot be loaded: {first} (an embedded name, a "
                          "local folder or a Hugging Face hub id)") from err


def check_tokenizers_compatible(student_tok, teacher_tok) -> None:
    """Raise ValueError listing what differs between two tokenizers (vocab, specials)."""
    problems = []
    s_vocab, t_vocab = student_tok.get_vocab(), teacher_tok.get_vocab()
    if len(s_vocab) != len(t_vocab):
        problems.append(f"vocab size {len(s_vocab)} (student) != {len(t_vocab)} (teacher)")
    differing = sorted(tok for tok in set(s_vocab) | set(t_vocab)
                       if s_vocab.get(tok) != t_vocab.get(tok))
    if differing:
        shown = ", ".join(repr(t) for t in differing[:10])
        more = f" and {len(differing) - 10} more" if len(differing) > 10 else ""
        problems.append(f"{len(differing)} tokens map to different ids: {shown}{more}")
    for attr in ("eos_token", "bos_token", "pad_token", "unk_token"):
        s, t = getattr(student_tok, attr, None), getattr(teacher_tok, attr, None)
        if s != t:
            problems.append(f"{attr}: {s!r} (student) != {t!r} (teacher)")
    if problems:
        raise ValueError("student and teacher tokenizers differ: " + "; ".join(problems))
