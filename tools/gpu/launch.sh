#!/bin/bash
# Start every candidate run in the background on one CUDA GPU (Keras on JAX), one log each.
#   KERAS_BACKEND=jax bash tools/gpu/launch.sh DATA_ROOT RUNS_DIR [BUDGET_MINUTES]
# Each run follows a cosine schedule over its time budget and writes RUNS_DIR/<run>/NAME.keras;
# tools/gpu/collect.py then picks each model's best run on val (runs named t* are teachers
# only: their soft predictions come back, their weights do not). Rotation, zoom and shift run
# on the host (trainer.augment): Keras' own affine layers take ~0.4 s a batch on a GPU.
# Measured on an H100 with one run alone: cnn width 48 2.6 s/epoch, resnet50 at 96 px 4.5 s/epoch.
set -eu
DATA=$1 RUNS=$2 B=${3:-12}
# MobileNetV2 spends about a minute on its two head-only epochs before its budget starts
# (half its budget in a rehearsal of under 2 minutes).
MB=$(python3 -c "import sys; b = float(sys.argv[1]); print(round(b - 1 if b >= 2 else b / 2, 3))" "$B") || exit 2
MW=${MOBILENET_WEIGHTS:-build/mobilenet_v2_torchvision_notop.weights.h5}
export KERAS_BACKEND=${KERAS_BACKEND:-jax} XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
COMMON="--data $DATA --precision mixed_bfloat16 --patience 1000 --quiet --no-resume-checkpoint --epochs 1000"
# ONLY="m96 c48": start just these runs (a short second call); HEAD_EPOCHS=0: MobileNetV2
# fine-tunes everything from the first step (one XLA compile instead of two).
run() {
  name=$1; shift
  [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $name "* ]] || return 0
  mkdir -p "$RUNS/$name"
  setsid nohup python3 -m trainer.train $COMMON "$@" --out "$RUNS/$name" > "$RUNS/$name/log" 2>&1 < /dev/null &
  echo $! > "$RUNS/$name/pid"
}
# The shipped cnn stays at width 48 (2.7 ms per face on 2 CPU cores); t64 is a teacher for trainer.distill.
run c48 --model cnn --width 48 --class-weight-power 0.5 --time-budget "$B"
run c48m --model cnn --width 48 --class-weight-power 0.5 --mixup 0.2 --seed 7 --time-budget "$B"
run t64 --model cnn --width 64 --class-weight-power 0.5 --seed 3 --time-budget "$B"
for size in 96 128; do
  run r$size --model resnet50 --backbone-weights none --img-size $size --batch-size 128 --class-weight-power 0.5 \
      --time-budget "$B"
  # --epochs 2 (head only) overrides COMMON's 1000: argparse keeps the last one given.
  run m$size --model mobilenetv2 --backbone-weights "$MW" --img-size $size --batch-size 128 \
      --fine-tune-epochs 1000 --fine-tune-layers all --fine-tune-bn --fine-tune-lr 1e-3 \
      --class-weight-power 0.5 --time-budget "$MB" --epochs "${HEAD_EPOCHS:-2}"
done
echo "started $(ls "$RUNS" | wc -l) runs in $RUNS"
