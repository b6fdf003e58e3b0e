"""Entry point of a verifier supervisor process: `python -m rlad_pl.tasks.math.supervisor`
(started by `rlad_pl.tasks.math.pool`; see there)."""

from .pool import supervisor_main

if __name__ == "__main__":
    supervisor_main()
