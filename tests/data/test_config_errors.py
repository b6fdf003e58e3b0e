"""Bad PromptDataModule settings fail at construction with a one-line ConfigError naming the key,
the bad value and what is allowed (before tokenizers, files or generators are touched)."""

from pathlib import Path

import pytest

from rlad_pl.cli import main
from rlad_pl.data import PromptDataModule
from rlad_pl.errors import ConfigError


@pytest.mark.parametrize(("kwargs", "start"), [
    ({"prompts_per_step": 0}, "prompts_per_step=0: an integer >= 1"),
    ({"val_prompts_per_step": 0}, "val_prompts_per_step=0: "),
    ({"on_bad_record": "ignore"}, "on_bad_record='ignore': 'skip' or 'error'"),
    ({"train_size": -1}, "train_size=-1: an integer >= 0"),
    ({"train_size": 0}, "train_size=0: an integer >= 1 when training records are generated"),
    ({"val_size_per_subset": -2}, "val_size_per_subset=-2: "),
    ({"max_prompt_tokens": 0}, "max_prompt_tokens=0: "),
    ({"train_epochs": 0}, "train_epochs=0: "),
    ({"num_workers": -1}, "num_workers=-1: "),
    ({"data_dir": "/no/such/dir"}, "data_dir='/no/such/dir': an existing directory"),
    ({"task": "chess"}, "task='chess': unknown task 'chess'; available: knights_knaves, math"),
    ({"task_kwargs": {"levels": [3]}}, "task_kwargs={'levels': [3]}: "),
])
def test_bad_settings_raise_one_line_config_errors(kwargs, start):
    with pytest.raises(ConfigError) as err:
        PromptDataModule(tokenizer="/not/loaded", **kwargs)
    message = str(err.value)
    assert message.startswith(f"data.init_args.{start}") and "\n" not in message, message


def test_missing_data_files_name_their_key(tmp_path):
    dm = PromptDataModule(tokenizer="tiny-kk-student", train_files=str(tmp_path / "none.jsonl"))
    with pytest.raises(ConfigError, match=r"^data.init_args.train_files='.*none.jsonl': no data"):
        dm.setup("fit")
    (tmp_path / "train").mkdir()
    dm = PromptDataModule(tokenizer="tiny-kk-student", data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"^data.init_args.data_dir='.*test'"):  # no test/
        dm.setup("fit")


def test_cli_reports_a_data_config_error_in_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = str(Path(__file__).resolve().parents[2] / "configs" / "logic.yaml")
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", config, "--data.init_args.prompts_per_step", "0"])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "rlad-pl: config error: data.init_args.prompts_per_step=0: an integer >= 1"
