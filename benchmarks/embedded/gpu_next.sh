#!/usr/bin/env bash
# Prepared (NOT yet run) next GPU call of the embedded-model search: the `dfs_path` format (roles
# restated on every line, see benchmarks/results/embedded_models.md), a longer schedule, lr 3e-3, and the
# math pair. One call of about 5 minutes; results and model tarballs come back under $OUT.
# Usage: the device tool, command `OUT=$OUT bash benchmarks/embedded/gpu_next.sh`, timeout_s 330.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=2
R=${OUT}/runs; mkdir -p "$R"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$R/gpu.txt"
T=configs/sft_teacher.yaml; S=configs/sft_student.yaml
FIT="trainer.max_time=00:00:03:00"
PATHF="data.init_args.target_format=dfs_path model.init_args.max_new_tokens=520"
run() { name=$1; shift; timeout 305 python benchmarks/embedded/train_eval.py --out "$R/$name" "$@" > "$R/$name.log" 2>&1 & }
run t_path_2k --config $T --set $FIT $PATHF
run t_path_4k --config $T --set $FIT $PATHF trainer.max_steps=4000 trainer.val_check_interval=1000
run t_path_2k_lr3 --config $T --set $FIT $PATHF model.init_args.lr=3.0e-3
run s_path_800 --config $S --set $PATHF --variance 64
run s_path_1200 --config $S --set $PATHF trainer.max_steps=1200 --variance 64
run m_teacher --config configs/sft_math_teacher.yaml --set $FIT
run m_student --config configs/sft_math_student.yaml --variance 64
wait
grep -h RESULT "$R"/*.log
cd "$OUT"
tar czf results.tgz runs/*.log runs/gpu.txt runs/*/result.json runs/*/logs
for m in t_path_2k t_path_4k t_path_2k_lr3; do tar cf $m.tar -C runs/$m model; done
tar cf students_math.tar runs/s_*/model runs/m_*/model
rm -rf runs
ls -la "$OUT"
