"""The ``rlad-pl`` command: ``fit | validate | test`` (LightningCLI) and ``generate-kk``.

Every constructor argument of the model (``model.class_path``, e.g. ``rlad_pl.module.RLADModule``
or ``rlad_pl.sft.SFTModule``), of the datamodule and of the Trainer is a config key;
``rlad-pl fit --config configs/logic.yaml --print_config`` prints the complete resolved config.
Configs compose: ``--config configs/logic.yaml --config configs/strategy/ddp.yaml``.
"""

from __future__ import annotations

import sys
import warnings

from lightning.pytorch.cli import LightningCLI

from rlad_pl.errors import ConfigError

DESCRIPTION = (
    "rlad-pl: RL post-training of LLMs with teacher distillation (RLAD/TRRD, GRPO, KDRL, GKD). "
    "Subcommands fit/validate/test take --config FILE.yaml (repeatable) and any key as --a.b value; "
    "`rlad-pl generate-kk --help` writes a Knights-and-Knaves dataset."
)


class RLADCLI(LightningCLI):
    """LightningCLI with model and datamodule chosen by ``class_path`` in the config."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        super().__init__(
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"prog": "rlad-pl", "description": DESCRIPTION},
            auto_configure_optimizers=False,  # the modules build their own optimizer + schedule
            args=args,
            run=run,
        )

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {name: keys for name, keys in LightningCLI.subcommands().items()
                if name in ("fit", "validate", "test")}


def main(argv: list[str] | None = None) -> None:
    """Console entry point ``rlad-pl``."""
    # lightning 2.6 calls a torch pytree API that torch 2.13 deprecates: noise for users
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] == "generate-kk":
        from rlad_pl.tasks.knights_knaves import cli_generate

        cli_generate(args[1:])
        return
    try:
        RLADCLI(args=argv)
    except Exception as err:  # jsonargparse wraps errors raised while instantiating classes
        cause = err
        while cause is not None and not isinstance(cause, ConfigError):
            cause = cause.__cause__
        if cause is None:
            raise
        print(f"rlad-pl: config error: {cause}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
