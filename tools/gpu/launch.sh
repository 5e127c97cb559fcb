#!/bin/bash
# Start every candidate run in the background on one CUDA GPU (Keras on JAX or PyTorch), one log each.
#   bash tools/gpu/launch.sh DATA_ROOT RUNS_DIR [BUDGET_MINUTES]
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
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
COMMON="--data $DATA --precision mixed_bfloat16 --patience 1000 --quiet --no-resume-checkpoint --epochs 1000"
# ONLY="m96 c64": start just these runs (a short second call); HEAD_EPOCHS=0: MobileNetV2
# fine-tunes everything from the first step (one XLA compile instead of two); MOBILENET_BACKEND=jax;
# MOBILENET_BATCH (default 512: Keras on PyTorch runs eagerly, ~60 ms of Python per MobileNetV2
# step whatever the batch, so a quarter of the steps of batch 128, which took 306 ms a step).
# run NAME BACKEND ARGS...: BACKEND jax or torch (TORCH_PYTHON: a Python with PyTorch, for a rehearsal).
run() {
  name=$1 backend=$2; shift 2
  [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $name "* ]] || return 0
  mkdir -p "$RUNS/$name"
  py=python3; [ "$backend" = torch ] && py=${TORCH_PYTHON:-python3}
  KERAS_BACKEND=$backend setsid nohup $py -m trainer.train $COMMON "$@" --out "$RUNS/$name" \
      > "$RUNS/$name/log" 2>&1 < /dev/null &
  echo $! > "$RUNS/$name/pid"
}
# The H200's first call: seven runs side by side starved ResNet50 (22 epochs in 6 minutes) and
# MobileNetV2's fine-tuning never finished an epoch under JAX (XLA's depthwise-convolution
# gradients), while its head-only epochs took 4 s. So: one ResNet50 run, MobileNetV2 under
# PyTorch (cuDNN's depthwise kernels), and one wider cnn that comes back as a file
# (an ensemble member; the shipped cnn stays at width 48 for its CPU speed).
run c64 jax --model cnn --width 64 --class-weight-power 0.5 --seed 3 --time-budget "$B"
run r96 jax --model resnet50 --backbone-weights none --img-size 96 --batch-size 128 --class-weight-power 0.5 \
    --time-budget "$B"
for size in 96 128; do
  # --epochs (head only) overrides COMMON's 1000: argparse keeps the last one given.
  run m$size "${MOBILENET_BACKEND:-torch}" --model mobilenetv2 --backbone-weights "$MW" --img-size $size \
      --batch-size "${MOBILENET_BATCH:-512}" --fine-tune-epochs 1000 --fine-tune-layers all --fine-tune-bn --fine-tune-lr 1e-3 \
      --class-weight-power 0.5 --time-budget "$MB" --epochs "${HEAD_EPOCHS:-2}"
done
echo "started $(ls "$RUNS" | wc -l) runs in $RUNS"
