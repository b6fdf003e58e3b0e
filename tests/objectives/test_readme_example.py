"""The README's user-defined objective runs as written: built, validated and differentiated."""

import re
from pathlib import Path

import pytest
import torch

from rlad_pl.errors import ConfigError
from rlad_pl.objectives import Trajectory

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_objective_class():
    section = README.read_text().split("### Your own objective", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)  # the project's own README, not model text
    return namespace["TeacherWeightedGRPO"]


def test_readme_objective_trains_and_validates():
    cls = readme_objective_class()
    objective = cls(w=0.5)
    assert objective.needs_teacher and objective.uses_reward
    g = torch.Generator().manual_seed(0)
    old = -torch.rand(4, 5, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]])
    trajectory = Trajectory(mask=mask, advantages=torch.tensor([1.0, -1.0, 0.5, -0.5]),
                            old_logp=old, teacher_logp=old - 0.3, max_new_tokens=5)
    logp = old.clone().requires_grad_(True)
    loss, metrics = objective(logp, trajectory)
    loss.backward()
    assert torch.isfinite(loss) and logp.grad.abs().sum() > 0
    assert logp.grad[~mask.bool()].abs().sum() == 0
    assert metrics["teacher_weight/mean"] > 1
    with pytest.raises(ConfigError, match=r"^model.init_args.objective.init_args.w=-1"):
        cls(w=-1)
