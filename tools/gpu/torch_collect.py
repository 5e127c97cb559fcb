"""Pick each model's best trainer.pytorch.train run on val and pack what a transfer back can carry.

    python3 tools/gpu/torch_collect.py RUNS_DIR OUT_DIR

OUT gets meta.tar.gz (every run's JSON, history and log, and chosen.json: the run picked per
model) and the chosen runs' NAME_fp16.npz cut into NAME_fp16.npz.partN of under 16 MiB each
(the most one file may be). On its own it is the rescue call of a warm machine whose first
answer did not bring the files back: the runs are still in RUNS_DIR there.
"""

import sys
from pathlib import Path

from collect import best_runs, write_meta, write_parts  # tools/gpu/collect.py: one layout for both paths

runs, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
best = best_runs(runs, "{name}_fp16.npz")
chosen = {name: run.name for name, run in best.items()}
write_meta(runs, out, chosen, leave_out=".npz")
for name, run in best.items():
    write_parts(out, name, (run / f"{name}_fp16.npz").read_bytes())
print("chosen:", chosen)
