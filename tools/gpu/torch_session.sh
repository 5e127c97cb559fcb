#!/bin/bash
# One lent-GPU call in plain PyTorch: decode FER2013, train ResNet50 and MobileNetV2 runs side by
# side to one deadline, stop stragglers, send back each model's best run on val.
#   bash tools/gpu/torch_session.sh OUT_DIR [TRAIN_END_S] [STOP_AT_S]
# Every run's learning rate anneals to TRAIN_END seconds after the start (default 500); runs still
# going at STOP_AT (default 530) get SIGTERM (they write their best weights) and then SIGKILL.
# OUT gets meta.tar.gz (every run's JSON, history and log, chosen.json) and NAME_fp16.npz.partN
# (< 16 MiB each) of the chosen runs; trainer/pytorch/to_keras.py makes the .keras files.
# Needs build/fer2013.npz.xz (tools/gpu/pack_data.py) and build/mobilenet_v2-b0353104.pth; no
# Keras, only PyTorch, NumPy, Pillow and scikit-learn, which the lent machines have.
# Rehearse on a CPU first: PYTHON=.venv/bin/python SAMPLE="--limit 512 --batch-size 32" with
# small TRAIN_END and STOP_AT. ONLY="r96 m96" starts just those runs.
set -u
OUT=$1 TRAIN_END=${2:-500} STOP_AT=${3:-530}
T0=$(date +%s)
PY=${PYTHON:-python3} RUNS=${RUNS:-/tmp/torch_runs} CACHE=${CACHE:-/tmp/fer48.npz}
since() { echo $(( $(date +%s) - T0 )); }
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 3
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
[ -f "$CACHE" ] || $PY -m trainer.pytorch.train --prepare --packed build/fer2013.npz.xz --cache "$CACHE" || exit 3
echo "[$(since) s] data ready"
rm -rf "$RUNS"
MW=build/mobilenet_v2-b0353104.pth
run() {
  name=$1; shift
  [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $name "* ]] || return 0
  mkdir -p "$RUNS/$name"
  setsid nohup $PY -m trainer.pytorch.train --cache "$CACHE" --deadline $((T0 + TRAIN_END)) --out "$RUNS/$name" \
      ${SAMPLE:-} "$@" > "$RUNS/$name/log" 2>&1 < /dev/null &
  echo $! > "$RUNS/$name/pid"
}
# The runs of the fourth lent H200 (2026-11-27, tools/gpu/README.md): m96 is the shipped
# weights/mobilenetv2.keras (val 0.691); r96 reached val 0.662 in 69 epochs beside the other two,
# r96a (AdamW) 0.629 in 39. ResNet50 alone takes 4.2 s an epoch against 5.6 s beside them, so the
# next call runs ONLY=r96 for the whole deadline.
run r96 --model resnet50 --img-size 96 --backbone-weights none --lr 0.1 --weight-decay 5e-4 --seed 1
run r96a --model resnet50 --img-size 96 --backbone-weights none --optimizer adamw --lr 1e-3 --weight-decay 0.05 \
    --batch-size 128 --seed 2
run m96 --model mobilenetv2 --img-size 96 --backbone-weights $MW --lr 0.05 --weight-decay 1e-4 --seed 3
echo "[$(since) s] started: $(ls "$RUNS" | tr '\n' ' ')"
alive() { for p in "$RUNS"/*/pid; do kill -0 "$(cat "$p")" 2>/dev/null && basename "$(dirname "$p")"; done; }
while [ -n "$(alive)" ] && [ "$(since)" -lt "$STOP_AT" ]; do sleep 3; done
if [ -n "$(alive)" ]; then
  echo "[$(since) s] stopping runs still going: $(alive | tr '\n' ' ')"
  for r in $(alive); do kill -TERM "$(cat "$RUNS/$r/pid")"; done
  for _ in 1 2 3 4 5 6 7 8 9 10; do [ -z "$(alive)" ] && break; sleep 1; done
  for r in $(alive); do kill -KILL -- -"$(cat "$RUNS/$r/pid")"; done
fi
echo "[$(since) s] training over"
for f in "$RUNS"/*/log; do echo "== $f"; grep -E "px on|Error|error" "$f" | head -3; tail -n 3 "$f"; done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
$PY tools/gpu/torch_collect.py "$RUNS" "$OUT"
echo "[$(since) s] done"
ls -la "$OUT"
du -sh "$OUT"
