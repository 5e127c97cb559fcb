#!/bin/bash
# The whole lent-GPU call: install, unpack, train every candidate in parallel, collect, predict.
#   bash tools/gpu/session.sh OUT_DIR [BUDGET_MINUTES] [STOP_AT_S] [END_AT_S]
# Runs train for BUDGET minutes each (default 6); any still running STOP_AT seconds after the
# start (default 450) are stopped and left out; the soft predictions stop being computed at
# END_AT (default 530), so a call with a 560 s limit always returns its files. Rehearse on a
# CPU with a small sample first (tools/gpu/README.md); TORCH_PYTHON: a Python with PyTorch and Keras
# for the MobileNetV2 runs, where python3 has none (a rehearsal). Needs build/fer2013.npz.xz,
# build/mobilenet_v2_torchvision_notop.weights.h5 and, where Keras is missing, .whl/.
set -u
OUT=$1 B=${2:-6} STOP_AT=${3:-450} END_AT=${4:-530}
T0=$(date +%s)
DATA=${DATA:-/tmp/fer2013} RUNS=${RUNS:-/tmp/runs}
since() { echo $(( $(date +%s) - T0 )); }
mkdir -p "$OUT"
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
if ! python3 -c "import keras" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
python3 -c "import keras, jax; print('keras', keras.__version__, 'jax', jax.__version__, jax.devices())" || exit 3
KERAS_BACKEND=torch ${TORCH_PYTHON:-python3} -c "import keras, torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 3
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
[ -d "$DATA/train" ] || python3 tools/gpu/unpack_data.py "${PACKED:-build/fer2013.npz.xz}" "$DATA" || exit 3
rm -rf "$RUNS"
bash tools/gpu/launch.sh "$DATA" "$RUNS" "$B" || exit 3
echo "[$(since) s] launched"
while :; do
  alive=$(for p in "$RUNS"/*/pid; do kill -0 "$(cat "$p")" 2>/dev/null && basename "$(dirname "$p")"; done)
  [ -z "$alive" ] && break
  if [ "$(since)" -ge "$STOP_AT" ]; then
    echo "[$(since) s] stopping runs still going: $alive"
    for r in $alive; do kill -- -"$(cat "$RUNS/$r/pid")" 2>/dev/null; done
    sleep 2
    break
  fi
  sleep 5
done
echo "[$(since) s] training over"
for f in "$RUNS"/*/log; do echo "== $f"; grep -E "val_accuracy|time budget|saved|Error|error" "$f" | tail -n 3; done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
python3 tools/gpu/collect.py "$RUNS" "$OUT"
echo "[$(since) s] collected"
python3 tools/gpu/predict_views.py "$RUNS" "$DATA" "$OUT/predictions.npz" $((T0 + END_AT))
echo "[$(since) s] done"
ls -la "$OUT"
du -sh "$OUT"
