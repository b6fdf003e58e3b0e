"""Math: answer extraction, bounded symbolic verification, benchmarks, synthetic problems, task."""

from .extract import answer_candidates, extract_answer
from .synthetic import generate_problems
from .task import MathTask
from .verify import (
                     DEFAULT_TIMEOUT,
                     Verdict,
                     check,
                     parse_number,
                     reset_verifier_stats,
                     verifier_stats,
                     verify,
                     warm_up,
)

__all__ = ["DEFAULT_TIMEOUT", "MathTask", "Verdict", "answer_candidates", "check",
           "extract_answer", "generate_problems", "parse_number",
           "reset_verifier_stats", "verifier_stats", "verify", "warm_up"]
