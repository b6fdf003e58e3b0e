"""Lightning callbacks of the RL loop: teacher log-prob cache, evaluation, samples, HF export."""

from rlad_pl.callbacks.evaluation import Evaluation
from rlad_pl.callbacks.hf_export import HFExport
from rlad_pl.callbacks.samples import SampleLogger
from rlad_pl.callbacks.teacher_cache import TeacherLogprobCache

__all__ = ["Evaluation", "HFExport", "SampleLogger", "TeacherLogprobCache"]
