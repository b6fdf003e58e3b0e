"""The `rlad-pl` command: configs parse, a tiny fit logs every documented tag, resume, test,
bad configs exit with one line, generate-kk is dispatched."""

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from transformers import AutoModelForCausalLM

from rlad_pl.cli import main, preflight
from rlad_pl.module import METRICS

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
TINY = ["--trainer.max_steps", "2", "--trainer.val_check_interval", "2",
        "--model.init_args.sampling.max_new_tokens", "12",
        "--model.init_args.sampling.num_samples", "4",
        "--model.init_args.evaluation.samples", "2", "--data.init_args.val_size_per_subset", "2",
        "--data.init_args.prompts_per_step", "2", "--data.init_args.train_size", "64",
        "--trainer.enable_progress_bar", "false"]


@pytest.mark.parametrize("configs, objective_keys", [
    (["logic.yaml"], ("rlad_pl.objectives.TRRD", "alpha:", "teacher_clip:", "clamp_form:")),
    (["logic.yaml", "logic-grpo.yaml"], ("rlad_pl.objectives.GRPO", "rollout_is_cap:")),
    (["logic.yaml", "logic-kdrl.yaml"], ("rlad_pl.objectives.KDRL", "kd_coef:", "kd_coef_final:")),
    (["math.yaml"], ("rlad_pl.objectives.TRRD", "alpha:")),
    (["logic.yaml", "logic-qwen3-vllm-gpu.yaml"],
     ("student: Qwen/Qwen3-0.6B", "rollout_engine: vllm", "sleep_mode: true",
      "teacher_dtype: bfloat16", "gradient_checkpointing: true")),
])
def test_print_config_is_complete(configs, objective_keys, capsys, tmp_path, monkeypatch):
    with pytest.raises(SystemExit) as done:  # the baselines are overlays of logic.yaml
        main(["fit", *(a for c in configs for a in ("--config", str(CONFIGS / c))),
              "--print_config"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    for key in ("class_path: rlad_pl.module.RLADModule", "num_samples:", "eps_low:",
                "aggregation:", "ppo_epochs:", "samples:", "lr:", "rollout_engine:",
                "class_path: rlad_pl.data.PromptDataModule", "prompts_per_step:", "max_steps:",
                *objective_keys):
        assert key in printed, key
    resolved = tmp_path / "resolved.yaml"  # every key with its default: the pre-flight accepts it
    resolved.write_text(printed)
    monkeypatch.setattr("rlad_pl.cli.hub_unreachable", lambda: None)  # hub ids (Qwen3) as if online
    preflight(["fit", "--config", str(resolved)])


def scalar_tags(log_dir: Path) -> set[str]:
    tags = set()
    for events in log_dir.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events.parent))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    return tags


def test_fit_logs_every_documented_tag_then_resumes_and_tests(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = str(CONFIGS / "logic.yaml")
    extra = ["--model.init_args.drop_zero_variance_groups", "false",  # update even if no signal
             "--model.init_args.beta", "0.01"]
    main(["fit", "--config", config, *TINY, *extra])
    run = tmp_path / "runs" / "logic" / "version_0"
    tags = scalar_tags(run)
    expected = {tag.replace("<component>", c).replace("<subset>", s).replace("<n>", "2")
                .replace("<k>", "2")
                for tag in METRICS
                if not tag.startswith(("test/", "train/kdrl", "train/gkd", "rollout/"))
                and "old_logp" not in tag and "<subset>" not in tag  # one subset: means only
                for c in ("format", "answer") for s in ("people3",)}
    assert expected - tags == set()
    samples = EventAccumulator(str(run))
    samples.Reload()
    assert any(tag.startswith("samples/train") for tag in samples.Tags()["tensors"])
    assert (tmp_path / "runs" / "logic" / "checkpoints" / "last.ckpt").is_file()

    model = AutoModelForCausalLM.from_pretrained(run / "hf_model")
    out = model.generate(torch.tensor([[5, 6, 7]]), max_new_tokens=3, do_sample=False)
    assert out.shape[1] > 3

    main(["fit", "--config", config, *TINY, *extra, "--trainer.max_steps", "3",
          "--ckpt_path", "last"])
    last = torch.load(tmp_path / "runs" / "logic" / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 3 and last["rlad"]["rollouts_done"] == 3
    resumed = EventAccumulator(str(tmp_path / "runs" / "logic" / "version_1"))
    resumed.Reload()
    assert len(resumed.Scalars("train/reward/mean")) == 1  # only step 3 was run again

    main(["test", "--config", config, *TINY, "--ckpt_path", "runs/logic/checkpoints/last.ckpt"])
    assert {"test/accuracy/mean"} <= scalar_tags(
        tmp_path / "runs" / "logic" / "version_2")


@pytest.mark.parametrize("override, message", [
    (["--model.init_args.objective.init_args.alpha", "1.5"],
     "model.init_args.objective.init_args.alpha=1.5: must lie in [0, 1]"),
    (["--model.init_args.teacher", "null"],
     "model.init_args.teacher=None: objective TRRD needs a teacher"),
    (["--model.init_args.sampling.num_samples", "1"],
     "model.init_args.sampling.num_samples=1: must be an integer >= 2"),
    (["--model.init_args.objective.init_args.eps_high", "0"],
     "model.init_args.objective.init_args.eps_high=0.0: must be > 0"),
    (["--model.init_args.optimization.lr", "-1"],
     "model.init_args.optimization.lr=-1.0: must be > 0"),
    (["--model.init_args.task", "math"], "model.init_args.task='math': the data provides task"),
])
def test_bad_config_exits_with_one_line(tmp_path, monkeypatch, capsys, override, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(CONFIGS / "logic.yaml"), *TINY, *override])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"rlad-pl: config error: {message}")


def test_generate_kk_is_dispatched(tmp_path):
    main(["generate-kk", "--out", str(tmp_path), "--people", "3", "--train-per-level", "4",
          "--test-per-level", "2", "--seed", "1"])
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["people3_num4.jsonl"]
