"""`python -m rlad_pl.sft fit --config configs/sft_teacher.yaml`: the `rlad-pl` command line
(LightningCLI with the module and datamodule chosen by `class_path`; one-line config errors)."""

from rlad_pl.cli import main

if __name__ == "__main__":
    main()
