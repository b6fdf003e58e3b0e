"""The gradient-property suite (analysis/) passes on the real objectives and catches broken ones."""

import os
import subprocess
import sys

import pytest
import torch

from analysis import PROOFS, run_numeric
from rlad_pl.objectives.aggregation import aggregate
from rlad_pl.objectives.tokens import on_tokens, token_advantages

DEFECTS = {  # defect -> the spec properties (besides the derivative check D) that must catch it
    "clip bounds swapped": {"1", "3", "4"},
    "(1 - alpha) factor dropped": {"1", "2", "3"},
    "clamp removed": {"1", "2", "3"},
    "min replaced by max": {"1", "3", "4"},
    "old and teacher log-probs swapped": {"2", "4"},
}


def broken_trrd_loss(defect):
    """``trrd_loss`` (paper clamp form) with one deliberate defect."""

    def loss_fn(
        logp,
        old_logp,
        teacher_logp,
        advantages,
        mask,
        *,
        alpha=0.5,
        eps_low=0.2,
        eps_high=0.28,
        teacher_clip=1.0,
        aggregation="seq-mean-token-mean",
    ):
        if defect == "old and teacher log-probs swapped":
            old_logp, teacher_logp = teacher_logp, old_logp
        m = mask.bool()
        l, l_old = on_tokens(logp, m), on_tokens(old_logp, m)
        A = token_advantages(advantages, m, l.dtype)
        if alpha == 1:
            log_r = l - l_old
        else:
            l_T = on_tokens(teacher_logp, m)
            teacher = (
                l - l_T
                if defect == "clamp removed"
                else (l - l_T).clamp(-teacher_clip, teacher_clip)
            )
            weight = 1 if defect == "(1 - alpha) factor dropped" else 1 - alpha
            log_r = alpha * (l - l_old) + weight * teacher
        r = torch.exp(log_r)
        low, high = 1 - eps_low, 1 + eps_high
        if defect == "clip bounds swapped":
            low, high = 1 - eps_high, 1 + eps_low
        pick = torch.maximum if defect == "min replaced by max" else torch.minimum
        s = pick(r * A, r.clamp(low, high) * A)
        return -aggregate(s, m, aggregation), {}

    return loss_fn


def _failing(results):
    return {name for name, claims in results.items() if not all(holds for _, holds in claims)}


def test_symbolic_proofs_hold():
    for name, prove in PROOFS.items():
        claims = prove()
        assert claims and all(holds for _, holds in claims), (name, [c for c, h in claims if not h])


def test_numeric_checks_pass_on_the_objectives():
    assert _failing(run_numeric()) == set()


def test_correct_reimplementation_passes():
    """The harness used for the broken variants is itself correct without a defect."""
    failing = _failing(run_numeric(broken_trrd_loss(None)))
    assert failing <= {"D'"}  # it has no alternative clamp form


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_broken_variant_is_caught(defect):
    failing = _failing(run_numeric(broken_trrd_loss(defect)))
    assert "D" in failing
    assert DEFECTS[defect] <= failing, failing


def test_python_m_analysis_passes():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-m", "analysis"],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line for line in out.stdout.splitlines() if "PASS" in line or "FAIL" in line]
    assert len(rows) == 8 and "FAIL" not in out.stdout
