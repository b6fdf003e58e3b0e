"""`python -m rlad_pl.sft fit --config configs/sft_teacher.yaml`."""

from rlad_pl.sft.module import main

if __name__ == "__main__":
    main()
