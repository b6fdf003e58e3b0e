"""Command-line entry point `rlad-pl` (placeholder until the RL module lands)."""


def main() -> None:
    print("usage: rlad-pl {fit,validate,test,generate-kk} ...")
