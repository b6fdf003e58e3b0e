#!/usr/bin/env bash
# GPU checks on one device, all inside one deadline (BUDGET_S, default 560 s: the device tool
# allows 600 s a command). Untested as a whole: no session has had a GPU since it was written.
#
#  train    the embedded config (configs/logic.yaml) under bf16-mixed, STEPS (5) steps each with
#           the default strategy, FSDP1 (configs/strategy/fsdp1-gpu.yaml), FSDP2
#           (configs/strategy/fsdp.yaml), and the default strategy with fp32 student master
#           weights, a bf16 teacher and gradient checkpointing (the real-checkpoint keys); per
#           run: exit status, seconds per step (TensorBoard time/step_s and phases, mean of steps
#           2..STEPS), whether the HF export was written. ~45 s a run on an H200 (2026-11-27:
#           3.3 s/step + start).
#  rollout  benchmarks/rollout_engines.py --shape gpu: a random-weight Qwen3-0.6B shape in bf16,
#           64 prompts x 8 samples x 2048 new tokens (random weights: nearly every row runs to
#           2048), 1 timed round after an 8-token warm-up, whatever time the train part left.
#           vllm runs only where `import vllm` works: this workplace's GPU image has no vLLM and
#           its CUDA wheel is far over the 64 MiB a device call can carry, so there it is
#           kv_decode and hf_generate. Their HF DynamicCache grows to ~119 GiB of bf16 KV for
#           512 rows x 2176 positions (expandable segments keep the allocator from fragmenting);
#           estimated 2-3 min per rollout, so hf_generate may be cut by the deadline (each
#           round's line is logged as it finishes).
#
# Device tool: carry [".whl"], command `bash benchmarks/gpu_smoke.sh`, timeout_s 600. The GPU
# image lacks jsonargparse and its two extras; prepare them once, here, in the repo root:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
#       jsonargparse==4.53.0 docstring-parser==0.18.0 typeshed-client==2.15.0
# Results: $OUT/summary.txt (train), $OUT/rollout_engines.md (rollout), one log per run.
# SMOKE_PARTS="train" or "rollout" runs one part (benchmarks/embedded/gpu_teacher.sh: train);
# Dry run of the train part on a CPU: ACCELERATOR=cpu STEPS=2 SMOKE_PARTS=train
#   SMOKE_RUNS="default bf16_teacher" SMOKE_ARGS="--data.init_args.prompts_per_step 2" (extra
#   CLI arguments for every run).
set -u
deadline=$(( $(date +%s) + ${BUDGET_S:-560} ))
left() { echo $(( deadline - $(date +%s) )); }
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export HF_HUB_OFFLINE=1
OUT=${OUT:-/tmp/gpu_smoke}; mkdir -p "$OUT"
ACCELERATOR=${ACCELERATOR:-gpu}; STEPS=${STEPS:-5}
PARTS=${SMOKE_PARTS:-train rollout}
RUNS=${SMOKE_RUNS:-default fsdp1 fsdp2 bf16_teacher}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | tee "$OUT/gpu.txt"
python3 -c "import torch, lightning, transformers; print('torch', torch.__version__, 'lightning',
lightning.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"

COMMON=(--config configs/logic.yaml --trainer.accelerator "$ACCELERATOR" --trainer.devices 1
        --trainer.precision bf16-mixed --trainer.max_steps "$STEPS" --trainer.num_sanity_val_steps 0
        --trainer.limit_val_batches 0 --trainer.enable_progress_bar false)
read -r -a SMOKE_ARGS <<< "${SMOKE_ARGS:-}"
declare -A EXTRA=(
  [default]=""
  [fsdp1]="--config configs/strategy/fsdp1-gpu.yaml"
  [fsdp2]="--config configs/strategy/fsdp.yaml"
  [bf16_teacher]="--model.init_args.dtype float32 --model.init_args.teacher_dtype bfloat16
                  --model.init_args.gradient_checkpointing true"
)
train() {
  name=$1
  limit=$(( $(left) < 90 ? $(left) : 90 ))
  if (( limit < 20 )); then echo "$name: skipped, deadline" | tee -a "$OUT/summary.txt"; return; fi
  start=$(date +%s); rm -rf runs/logic/checkpoints "runs/smoke_$name"  # formats differ per strategy
  # shellcheck disable=SC2086  # EXTRA holds separate arguments
  timeout "$limit" python3 -m rlad_pl.cli fit "${COMMON[@]}" \
    --trainer.logger.init_args.name "smoke_$name" ${EXTRA[$name]} "${SMOKE_ARGS[@]}" \
    > "$OUT/$name.log" 2>&1
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
exported = glob.glob(f"runs/smoke_{name}/version_*/hf_model/model.safetensors")
print(f"  {name} HF export: {'written' if exported else 'MISSING'}")
PY
  tail -n 3 "$OUT/$name.log" | sed "s/^/  $name| /"
}

if [[ " $PARTS " == *" train "* ]]; then
  for name in $RUNS; do train "$name"; done
fi
if [[ " $PARTS " == *" rollout "* ]]; then
  engines="kv_decode hf_generate"
  python3 -c "import vllm" >/dev/null 2>&1 && engines="vllm $engines"
  echo "rollout --shape gpu, engines: $engines, $(left) s left" | tee -a "$OUT/summary.txt"
  if (( $(left) < 60 )); then echo "rollout: skipped, deadline" | tee -a "$OUT/summary.txt"; exit; fi
  # shellcheck disable=SC2086
  PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True timeout "$(left)" python3 \
    benchmarks/rollout_engines.py --shape gpu --rounds 1 --engines $engines \
    --out "$OUT/rollout_engines.md" > "$OUT/rollout.log" 2>&1
  echo "rollout: exit $?" | tee -a "$OUT/summary.txt"
  grep "^round" "$OUT/rollout.log" | tee -a "$OUT/summary.txt"
  tail -n 3 "$OUT/rollout.log" | sed "s/^/  rollout| /"
fi
