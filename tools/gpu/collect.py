"""Pick each model's best run on val and gather what a transfer back can carry.

    KERAS_BACKEND=jax python tools/gpu/collect.py RUNS_DIR OUT_DIR [all|resnet]

Writes OUT_DIR/cnn.keras and mobilenetv2.keras as trained, every run's JSON, history and
log in meta.tar.gz, chosen.json (run picked per model), and ResNet50's weights in float16
as resnet50_fp16.npz.partN of under 16 MiB each (import_weights.py rebuilds the model).
Everything together stays under 63 MiB; if ResNet50 does not fit beside the rest, ask for
it alone with mode "resnet".
"""

import json
import sys
import tarfile
from pathlib import Path

import numpy as np

runs, out = Path(sys.argv[1]), Path(sys.argv[2])
mode = sys.argv[3] if len(sys.argv) > 3 else "all"
PART, LIMIT = 16 * 2**20 - 4096, 63 * 2**20
out.mkdir(parents=True, exist_ok=True)

best = {}
for meta_path in sorted(runs.glob("*/*.json")):
    if meta_path.name.endswith(".history.json"):
        continue
    meta = json.loads(meta_path.read_text())
    print(f"{meta_path.parent.name:6s} {meta['name']:12s} val {meta['best_val_accuracy']:.4f} at epoch "
          f"{meta['best_epoch']}/{meta['epochs_trained']}, {meta['train_seconds']:.0f} s")
    if meta["name"] not in best or meta["best_val_accuracy"] > best[meta["name"]][0]:
        best[meta["name"]] = (meta["best_val_accuracy"], meta_path.parent)

with tarfile.open(out / "meta.tar.gz", "w:gz") as tar:
    for f in runs.glob("*/*"):
        if f.is_file() and f.suffix != ".keras":
            tar.add(f, arcname=f"{f.parent.name}/{f.name}")
(out / "chosen.json").write_text(json.dumps({name: run.name for name, (_, run) in best.items()}))

if mode == "all":
    for name in ("cnn", "mobilenetv2"):
        if name in best:
            (out / f"{name}.keras").write_bytes((best[name][1] / f"{name}.keras").read_bytes())
if "resnet50" in best and mode in ("all", "resnet"):
    import keras

    model = keras.saving.load_model(best["resnet50"][1] / "resnet50.keras")
    packed = out / "resnet50_fp16.npz"
    np.savez_compressed(packed, **{f"w{i:04d}": w.astype(np.float16) for i, w in enumerate(model.get_weights())})
    data = packed.read_bytes()
    packed.unlink()
    used = sum(f.stat().st_size for f in out.iterdir())
    if used + len(data) > LIMIT:
        print(f"resnet50 ({len(data) / 2**20:.1f} MiB) does not fit beside {used / 2**20:.1f} MiB: run mode 'resnet'")
    else:
        for i in range(0, len(data), PART):
            (out / f"resnet50_fp16.npz.part{i // PART}").write_bytes(data[i:i + PART])
files = sorted(out.iterdir())
print("files:", [f.name for f in files], f"{sum(f.stat().st_size for f in files) / 2**20:.1f} MiB")
