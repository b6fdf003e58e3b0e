"""The embedded byte-level BPE tokenizer, built offline with the `tokenizers` library.

Every UTF-8 string encodes (the 256 byte symbols are in the base alphabet, so there is no
unknown token), digits are split one by one (arithmetic), the reasoning tags are single added
tokens (not special: decoding with `skip_special_tokens=True` keeps them), and eos/pad are special.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

EOS, PAD = "<|endoftext|>", "<|pad|>"
TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def build_tokenizer(corpus: Iterable[str], vocab_size: int = 1024,
                    words: Iterable[str] = ()) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `corpus`; `words` (e.g. names) are repeated so that they become
    single tokens both with a leading space and at the start of a text.

    The result has eos, pad (left padding) and the four tags as single tokens.
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS, PAD], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    words = list(words)

    def texts():
        yield from corpus
        for _ in range(50):
            yield " " + " ".join(words)
            yield from words

    tok.train_from_iterator(texts(), trainer)
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in TAGS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, pad_token=PAD, padding_side="left",
        clean_up_tokenization_spaces=False, model_max_length=1024)


def save_tokenizer(tokenizer, path: str) -> None:
    """`save_pretrained`, naming the portable class `PreTrainedTokenizerFast` in the config
    (transformers 4.x does not know the 5.x name `TokenizersBackend`)."""
    tokenizer.save_pretrained(path)
    config_file = Path(path) / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_file.write_text(json.dumps(config, indent=2) + "\n")
