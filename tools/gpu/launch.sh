#!/bin/bash
# Start every candidate run in the background on one CUDA GPU (Keras on JAX), one log each.
#   KERAS_BACKEND=jax bash tools/gpu/launch.sh DATA_ROOT RUNS_DIR [BUDGET_MINUTES]
# Each run follows a cosine schedule over its time budget and writes RUNS_DIR/<run>/NAME.keras;
# tools/gpu/collect.py then picks each model's best run on val. Rotation, zoom and shift run on
# the host (trainer.augment): Keras' own affine layers take ~0.4 s a batch on a GPU.
# Measured on an H100 with one run alone: cnn width 48 2.6 s/epoch, resnet50 at 96 px 4.5 s/epoch.
set -eu
DATA=$1 RUNS=$2 B=${3:-12}
[ "$B" -ge 2 ] || { echo "budget: at least 2 minutes (MobileNetV2 gets one less after its head epochs)"; exit 2; }
MW=${MOBILENET_WEIGHTS:-build/mobilenet_v2_torchvision_notop.weights.h5}
export KERAS_BACKEND=${KERAS_BACKEND:-jax} XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
COMMON="--data $DATA --precision mixed_bfloat16 --patience 1000 --quiet"
run() {
  name=$1; shift; mkdir -p "$RUNS/$name"
  setsid nohup python3 -m trainer.train "$@" $COMMON --out "$RUNS/$name" > "$RUNS/$name/log" 2>&1 < /dev/null &
}
run c32 --model cnn --width 32 --class-weight-power 0.5 --epochs 1000 --time-budget "$B"
run c48 --model cnn --width 48 --class-weight-power 0.5 --epochs 1000 --time-budget "$B"
run c48w --model cnn --width 48 --class-weight-power 1.0 --epochs 1000 --time-budget "$B"
run r96 --model resnet50 --backbone-weights none --img-size 96 --batch-size 128 --class-weight-power 0.5 \
    --epochs 1000 --time-budget "$B"
run r128 --model resnet50 --backbone-weights none --img-size 128 --batch-size 128 --class-weight-power 0.5 \
    --epochs 1000 --time-budget "$B"
for size in 96 128; do
  run m$size --model mobilenetv2 --backbone-weights "$MW" --img-size $size --batch-size 128 --epochs 2 \
      --fine-tune-epochs 1000 --fine-tune-layers all --fine-tune-bn --fine-tune-lr 1e-3 \
      --class-weight-power 0.5 --time-budget $((B - 1))
done
echo "started $(ls "$RUNS" | wc -l) runs in $RUNS"
