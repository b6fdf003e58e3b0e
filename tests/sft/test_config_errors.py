"""Bad SFT settings fail with a one-line ConfigError naming the key, the bad value and what is
allowed, before any model, tokenizer or record is loaded or generated."""

import pytest

from rlad_pl.cli import main
from rlad_pl.errors import ConfigError
from rlad_pl.sft import SFTDataModule, SFTModule

TINY = {"model_type": "qwen3", "hidden_size": 32}


@pytest.mark.parametrize(("kwargs", "start"), [
    ({"levels": ["people9"]}, "levels=['people9']: a non-empty list of subsets of task "
                              "'knights_knaves' (people2, "),
    ({"levels": []}, "levels=[]: "),
    ({"task": "math", "levels": ["ops1"], "target_format": "dfs"},
     "target_format='dfs': one of task 'math''s SFT target formats (steps, answer)"),
    ({"target_format": "prose"}, "target_format='prose': "),
    ({"train_per_level": 0}, "train_per_level=0: an integer >= 1 (or give pairs_file)"),
    ({"batch_size": 0}, "batch_size=0: an integer >= 1"),
    ({"val_per_level": -1}, "val_per_level=-1: an integer >= 0"),
    ({"task": "go"}, "task='go': unknown task"),
])
def test_bad_data_settings(kwargs, start):
    with pytest.raises(ConfigError) as err:
        SFTDataModule("/not/loaded", **kwargs)
    message = str(err.value)
    assert message.startswith(f"data.init_args.{start}") and "\n" not in message, message


def test_missing_pairs_file_is_named_before_splits_are_generated(tmp_path):
    dm = SFTDataModule("tiny-kk-student", pairs_file=str(tmp_path / "pairs.jsonl"),
                       target_format="not checked with a pairs file")
    with pytest.raises(ConfigError, match=r"^data.init_args.pairs_file='.*pairs.jsonl': no such"):
        dm.setup("fit")
    assert dm.val_records == {}


@pytest.mark.parametrize(("kwargs", "start"), [
    ({}, "model=None, model.init_args.config=None: give exactly one"),
    ({"model": "tiny-kk-student", "config": TINY}, "model='tiny-kk-student', model.init_args"),
    ({"config": {"hidden_size": 32}}, "config={'hidden_size': 32}: HF config kwargs with"),
    ({"config": TINY, "export_dtype": "bfloat17"}, "export_dtype='bfloat17': a torch dtype"),
    ({"config": TINY, "lr": 0}, "lr=0: a number > 0"),
    ({"config": TINY, "min_lr_ratio": 2}, "min_lr_ratio=2: a number in [0, 1]"),
    ({"config": TINY, "task": "go"}, "task='go': unknown task"),
])
def test_bad_module_settings(kwargs, start):
    with pytest.raises(ConfigError) as err:
        SFTModule("/not/loaded", **kwargs)
    message = str(err.value)
    assert message.startswith(f"model.init_args.{start}") and "\n" not in message, message


def test_sft_cli_reports_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["fit", "--model", "rlad_pl.sft.SFTModule", "--model.tokenizer", "tiny-tokenizer",
              "--model.config", "{model_type: qwen3, hidden_size: 32, num_hidden_layers: 1}",
              "--data", "rlad_pl.sft.SFTDataModule", "--data.tokenizer", "tiny-tokenizer",
              "--data.levels", "[people9]"])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rlad-pl: config error: data.init_args.levels=['people9']: ")
