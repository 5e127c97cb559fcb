"""Pick each model's best torch_train.py run on val and pack what a transfer back can carry.

    python3 tools/gpu/torch_collect.py RUNS_DIR OUT_DIR

OUT gets meta.tar.gz (every run's JSON, history and log, and chosen.json: the run picked per
model) and the chosen runs' NAME_fp16.npz cut into NAME_fp16.npz.partN of under 16 MiB each
(the most one file may be). On its own it is the rescue call of a warm machine whose first
answer did not bring the files back: the runs are still in RUNS_DIR there.
"""

import json
import sys
from pathlib import Path

from collect import write_meta, write_parts  # tools/gpu/collect.py: the same layout for both paths

runs, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
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
write_meta(runs, out, chosen, leave_out=".npz")
for name, (_, weights) in best.items():
    write_parts(out, name, weights.read_bytes())
print("chosen:", chosen)
