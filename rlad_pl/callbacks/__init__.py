"""Lightning callbacks of the RL loop: teacher log-prob cache, evaluation, samples, HF export,
progress lines, TensorBoard layout."""

from rlad_pl.callbacks.evaluation import Evaluation
from rlad_pl.callbacks.hf_export import HFExport
from rlad_pl.callbacks.progress import ProgressLog, StepProgressBar
from rlad_pl.callbacks.samples import SampleLogger
from rlad_pl.callbacks.teacher_cache import TeacherLogprobCache
from rlad_pl.callbacks.tensorboard import TensorBoardLayout

__all__ = ["Evaluation", "HFExport", "ProgressLog", "SampleLogger", "StepProgressBar",
           "TeacherLogprobCache", "TensorBoardLayout"]
