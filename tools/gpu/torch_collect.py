"""Pick each model's best torch_train.py run on val and pack what a transfer back can carry.

    python3 tools/gpu/torch_collect.py RUNS_DIR OUT_DIR

OUT gets meta.tar.gz (every run's JSON, history and log, and chosen.json: the run picked per
model) and the chosen runs' NAME_fp16.npz cut into NAME_fp16.npz.partN of under 16 MiB each
(the most one file may be). On its own it is the rescue call of a warm machine whose first
answer did not bring the files back: the runs are still in RUNS_DIR there.
"""

import io
import json
import sys
import tarfile
from pathlib import Path

runs, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
PART = 16 * 2**20 - 4096
best = {}
for meta_path in sorted(runs.glob("*/*.json")):
    if meta_path.name.endswith(".history.json"):
        continue
    meta = json.loads(meta_path.read_text())
    weights = meta_path.with_name(f"{meta['name']}_fp16.npz")
    print(f"{meta_path.parent.name:5s} val {meta['best_val_accuracy']:.4f} at epoch {meta['best_epoch']}/{meta['epochs_trained']}")
    if weights.exists() and meta["best_val_accuracy"] > best.get(meta["name"], (-1, None))[0]:
        best[meta["name"]] = (meta["best_val_accuracy"], weights)
chosen = {name: w.parent.name for name, (_, w) in best.items()}
with tarfile.open(out / "meta.tar.gz", "w:gz") as tar:
    for f in sorted(runs.glob("*/*")):
        if f.is_file() and not f.name.endswith(".npz"):
            tar.add(f, arcname=f"{f.parent.name}/{f.name}")
    payload = json.dumps(chosen).encode()
    info = tarfile.TarInfo("chosen.json")
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))
for name, (_, weights) in best.items():
    data = weights.read_bytes()
    for i in range(0, len(data), PART):
        (out / f"{name}_fp16.npz.part{i // PART}").write_bytes(data[i:i + PART])
print("chosen:", chosen)
