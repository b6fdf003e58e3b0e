#!/usr/bin/env bash
# One GPU call (about 8 minutes): the K&K teacher search at batch 256 with a time-budgeted cosine schedule
# (train_eval.py --budget), the `dfs`, `dfs_path` and `dfs_explicit` trace formats side by side, students
# for the new formats, and (in parallel) the bf16 smoke of the RL config under the default strategy, FSDP1
# and FSDP2 (benchmarks/gpu_smoke.sh; its step times are taken while the GPU is shared with the search).
# Device tool: carry [".whl"] (for the smoke's jsonargparse), command `bash benchmarks/embedded/gpu_teacher.sh`, timeout_s 560.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=2
R=${OUT}/runs; mkdir -p "$R"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$R/gpu.txt"
T=configs/sft_teacher.yaml; S=configs/sft_student.yaml
BIG="data.init_args.batch_size=256 data.init_args.train_per_level=40000 model.init_args.lr=2.0e-3 trainer.max_steps=20000 trainer.val_check_interval=1000"
PATHF="data.init_args.target_format=dfs_path model.init_args.max_new_tokens=640"
EXPL="data.init_args.target_format=dfs_explicit model.init_args.max_new_tokens=960 model.init_args.config.max_position_embeddings=2048"
run() { name=$1; shift; timeout 520 python3 benchmarks/embedded/train_eval.py --out "$R/$name" "$@" > "$R/$name.log" 2>&1 & }
run t_dfs --config $T --budget 270 --set $BIG model.init_args.max_new_tokens=400
run t_path --config $T --budget 270 --set $BIG $PATHF
run t_expl --config $T --budget 270 --set $BIG $EXPL
run t_path_b128 --config $T --budget 270 --set $BIG $PATHF data.init_args.batch_size=128 model.init_args.lr=1.5e-3
run s_path_800 --config $S --set $PATHF --variance 64
run s_path_1500 --config $S --set $PATHF trainer.max_steps=1500 trainer.val_check_interval=500 --variance 64
run s_expl_1000 --config $S --set $EXPL trainer.max_steps=1000 trainer.val_check_interval=500 --variance 64
(OUT=$OUT/smoke SMOKE_PARTS=train SMOKE_RUNS="default fsdp1 fsdp2" bash benchmarks/gpu_smoke.sh > "$R/smoke.log" 2>&1) &
sleep 60; nvidia-smi | tee -a "$R/gpu.txt"
wait
grep -h "RESULT\|budget_steps" "$R"/*.log
cat "$OUT/smoke/summary.txt"
cd "$OUT"
tar czf results.tgz runs/*.log runs/gpu.txt runs/*/result.json runs/*/logs smoke
for m in t_dfs t_path t_expl t_path_b128; do tar czf $m.tgz -C runs/$m model; done
tar czf students.tgz runs/s_*/model
rm -rf runs smoke
ls -la "$OUT"
