#!/usr/bin/env bash
# GPU smoke of the embedded config (configs/logic.yaml) with bf16 mixed precision, 5 steps each under
# the default strategy, FSDP1 (configs/strategy/fsdp1-gpu.yaml) and FSDP2 (configs/strategy/fsdp.yaml)
# on 1 device; prints the seconds per training step (TensorBoard time/step_s, mean of steps 2..5).
# Device tool: carry [".whl"] (jsonargparse, docstring_parser, typeshed_client wheels: the GPU
# image lacks them), command `bash benchmarks/gpu_smoke.sh`, timeout_s 300.
set -u
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/gpu_smoke}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, lightning, transformers; print('torch', torch.__version__, 'lightning',
lightning.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"
COMMON=(--config configs/logic.yaml --trainer.accelerator gpu --trainer.devices 1
        --trainer.precision bf16-mixed --trainer.max_steps 5 --trainer.num_sanity_val_steps 0
        --trainer.limit_val_batches 0 --trainer.enable_progress_bar false)
run() {
  name=$1; shift
  start=$(date +%s); rm -rf runs/logic/checkpoints  # each strategy writes its own format
  timeout 90 python3 -m rlad_pl.cli fit "${COMMON[@]}" --trainer.logger.init_args.name "smoke_$name" \
    "$@" > "$OUT/$name.log" 2>&1
  echo "$name: exit $? after $(( $(date +%s) - start )) s" | tee -a "$OUT/summary.txt"
  python3 - "$name" <<'PY' | tee -a "$OUT/summary.txt"
import glob, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
name = sys.argv[1]
files = sorted(glob.glob(f"runs/smoke_{name}/version_*/events.*"))
if not files:
    sys.exit(print(f"  {name}: no TensorBoard events"))
acc = EventAccumulator(files[-1]); acc.Reload()
for tag in ("time/step_s", "time/rollout_s", "time/teacher_s", "time/update_s", "train/reward/mean"):
    if tag in acc.Tags()["scalars"]:
        values = [e.value for e in acc.Scalars(tag)]
        later = values[1:] or values
        print(f"  {name} {tag}: steps 2..{len(values)} mean {sum(later) / len(later):.3f}"
              f" (all: {', '.join(f'{v:.3f}' for v in values)})")
PY
  tail -n 3 "$OUT/$name.log" | sed "s/^/  $name| /"
}
run default
run fsdp1 --config configs/strategy/fsdp1-gpu.yaml
run fsdp2 --config configs/strategy/fsdp.yaml
ls runs/smoke_*/version_*/hf_model 2>/dev/null | head -20 | tee -a "$OUT/summary.txt"
