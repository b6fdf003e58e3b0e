"""Math: answer extraction, bounded exact verification, synthetic problems, the task."""

from .extract import extract_answer
from .synthetic import generate_problems
from .task import MathTask, load_jsonl
from .verify import parse_number, verify

__all__ = ["MathTask", "extract_answer", "generate_problems", "load_jsonl", "parse_number",
           "verify"]
