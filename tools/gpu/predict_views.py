"""Every finished run's soft predictions on train and val, for distillation and ensembles.

    KERAS_BACKEND=jax python tools/gpu/predict_views.py RUNS_DIR DATA_ROOT OUT.npz [DEADLINE_EPOCH_S]

ResNet50 and MobileNetV2 take minutes per pass over FER2013 on 2 CPU cores and seconds on
a GPU, so a lent machine computes what trainer.distill and the ensemble search need while
it has them: per run, train under "mirror" (the distillation targets) and val under every
view set of trainer.views (to choose views and ensemble members). float16, with the file
names, so the receiver can check the order against its own copy of the data. Teacher runs
go first, then the largest models; runs past the deadline are skipped.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import keras  # noqa: E402

from trainer.data import find_splits, load_split  # noqa: E402
from trainer.views import VIEW_SETS, predict_views  # noqa: E402

runs, data_root, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
deadline = float(sys.argv[4]) if len(sys.argv) > 4 else float("inf")
SETS = {"train": ("mirror",), "val": VIEW_SETS}
ORDER = {"resnet50": 0, "mobilenetv2": 1, "cnn": 2}  # what the CPU could least redo itself

items = find_splits(data_root)
arrays = {f"{split}_names": np.array([f"{p.parent.name}/{p.name}" for p, _ in items[split]]) for split in SETS}
arrays.update({f"{split}_labels": np.array([y for _, y in items[split]], dtype=np.int8) for split in SETS})
cache = {}  # (size, colour) -> {split: pixels}
done = []
metas = []
for meta_path in runs.glob("*/*.json"):
    if not meta_path.name.endswith(".history.json") and meta_path.with_suffix(".keras").exists():
        # Teachers (t*) first: their weights stay behind, so this is their only way back (the H200's
        # first call lost t64's when ResNet50's compile ate the time); then what the CPU could least redo.
        run = meta_path.parent.name
        metas.append((not run.startswith("t"), ORDER.get(json.loads(meta_path.read_text())["name"], 9), run, meta_path))
for *_, run, meta_path in sorted(metas):
    if time.time() > deadline:
        print(f"{run}: skipped, past the deadline")
        continue
    started = time.time()
    meta = json.loads(meta_path.read_text())
    key = (meta["input_shape"][0], meta["color_mode"])
    if key not in cache:
        cache[key] = {split: load_split(items[split], key[0], key[1], split).x for split in SETS}
    model = keras.saving.load_model(meta_path.with_suffix(".keras"))

    def predict(x, model=model):
        return model.predict(x, batch_size=1024, verbose=0)

    for split, view_sets in SETS.items():
        for view_set in view_sets:
            arrays[f"{run}.{split}.{view_set}"] = predict_views(predict, cache[key][split], view_set).astype(np.float16)
    accuracy = {v: float((arrays[f"{run}.val.{v}"].argmax(1) == arrays["val_labels"]).mean()) for v in VIEW_SETS}
    print(f"{run} ({meta['name']}): val " + ", ".join(f"{v} {a:.4f}" for v, a in accuracy.items())
          + f" [{time.time() - started:.0f} s]", flush=True)
    done.append(run)
    np.savez_compressed(out, runs=np.array(done), **arrays)  # after each run: a kill keeps what is done
