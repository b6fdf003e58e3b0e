#!/usr/bin/env bash
# Second GPU call of the K&K teacher search (about 4.5 minutes): the `dfs_explicit` trace, which the
# first call (gpu_teacher.sh) showed to be the most learnable per step, for the 5.0M teacher at two batch
# sizes, each with the GPU shared by the two runs only and a 150 s time-budgeted cosine schedule.
# Device tool: command `bash benchmarks/embedded/gpu_teacher_explicit.sh`, timeout_s 285.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=4
R=${OUT}/runs; mkdir -p "$R"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$R/gpu.txt"
EXPL="data.init_args.target_format=dfs_explicit model.init_args.max_new_tokens=960
      model.init_args.config.max_position_embeddings=2048 data.init_args.train_per_level=25000
      trainer.max_steps=20000 trainer.val_check_interval=100000 trainer.num_sanity_val_steps=0"
run() { name=$1; shift; timeout 265 python3 benchmarks/embedded/train_eval.py --out "$R/$name" "$@" > "$R/$name.log" 2>&1 & }
run t_expl_b128 --config configs/sft_teacher.yaml --budget 150 --set $EXPL data.init_args.batch_size=128 model.init_args.lr=1.5e-3
run t_expl_b256 --config configs/sft_teacher.yaml --budget 150 --set $EXPL data.init_args.batch_size=256 model.init_args.lr=2.0e-3
wait
grep -h "RESULT\|budget_steps\|Error" "$R"/*.log
cd "$OUT"
tar czf results.tgz runs/*.log runs/gpu.txt runs/*/result.json runs/*/logs
for m in t_expl_b128 t_expl_b256; do tar czf $m.tgz runs/$m/model; done
rm -rf runs
ls -la "$OUT"
