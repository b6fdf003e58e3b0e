#!/usr/bin/env bash
# One GPU call of the embedded-model search: several SFT candidates train in parallel on one GPU,
# each reports greedy test accuracy per level (and, for students, reward variance at T=1).
# Usage (device machine): OUT=/path bash benchmarks/embedded/gpu_search.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=2
R=${OUT}/runs; mkdir -p "$R"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$R/gpu.txt"
T=configs/sft_teacher.yaml; S=configs/sft_student.yaml
FIT="trainer.max_time=00:00:03:00"
H192="model.init_args.config.hidden_size=192 model.init_args.config.num_attention_heads=6 model.init_args.config.num_key_value_heads=3 model.init_args.config.intermediate_size=576"
run() { name=$1; shift; timeout 290 python benchmarks/embedded/train_eval.py --out "$R/$name" "$@" > "$R/$name.log" 2>&1 & }
run t_h256L6_dfs --config $T --set $FIT
run t_h192L6_dfs --config $T --set $FIT $H192
run t_h192L6_ans --config $T --set $FIT $H192 data.init_args.target_format=answer model.init_args.max_new_tokens=48
run t_h192L6_bt --config $T --set $FIT $H192 data.init_args.target_format=backtrack
run t_h192L6_dfs3k --config $T --set $FIT $H192 trainer.max_steps=3000
run s_h128L3_200 --config $S --set trainer.max_steps=200 trainer.val_check_interval=100 --variance 64
run s_h128L3_400 --config $S --set trainer.max_steps=400 trainer.val_check_interval=200 --variance 64
run s_h128L3_800 --config $S --set trainer.max_steps=800 trainer.val_check_interval=400 --variance 64
run s_h96L2_400 --config $S --set trainer.max_steps=400 trainer.val_check_interval=200 model.init_args.config.hidden_size=96 model.init_args.config.num_hidden_layers=2 model.init_args.config.num_attention_heads=3 model.init_args.config.num_key_value_heads=1 model.init_args.config.intermediate_size=288 --variance 64
sleep 20; nvidia-smi | tee -a "$R/gpu.txt"
wait
grep -h RESULT "$R"/*.log
cd "$OUT"
tar czf results.tgz runs/*.log runs/gpu.txt runs/*/result.json runs/*/logs
tar cf t_h256L6_dfs.tar -C runs/t_h256L6_dfs model
tar cf t_h192L6_dfs.tar -C runs/t_h192L6_dfs model
tar cf t_h192L6_dfs3k.tar -C runs/t_h192L6_dfs3k model
tar cf students.tar runs/s_*/model
rm -rf runs
ls -la "$OUT"
