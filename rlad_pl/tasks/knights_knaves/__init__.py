"""Knights and Knaves: generator, solver, chain-of-thought renderers, Logic-RL reward, task."""

from .cli import cli_generate
from .cot import Step, backtrack_trace, compact_cot, full_cot, verbose_cot
from .generator import generate_puzzles, sample_statement
from .logic import evaluate, parse_statements, solve, unique_solution
from .render import NAMES, compact_answer, compact_quiz, quiz_text, solution_text
from .reward import format_ok, parse_roles, score
from .task import KnightsKnavesTask

__all__ = [
    "NAMES", "KnightsKnavesTask", "Step", "backtrack_trace", "cli_generate", "compact_answer",
    "compact_cot", "compact_quiz", "evaluate", "format_ok", "full_cot", "generate_puzzles",
    "parse_roles", "parse_statements", "quiz_text", "sample_statement", "score", "solution_text",
    "solve", "unique_solution", "verbose_cot",
]
