"""Prompt data: records from files or generators, the resumable sharded stream, the DataModule."""

from .collate import PromptCollator
from .datamodule import PromptDataModule, load_tokenizer
from .records import BadRecords, DataFileError, expand_files, read_records, read_rows
from .stream import PromptStream

__all__ = ["BadRecords", "DataFileError", "PromptCollator", "PromptDataModule", "PromptStream",
           "expand_files", "load_tokenizer", "read_records", "read_rows"]
