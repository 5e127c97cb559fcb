"""Pick each model's best run on val and gather what a transfer back can carry.

    KERAS_BACKEND=jax python tools/gpu/collect.py RUNS_DIR OUT_DIR

Writes OUT_DIR/meta.tar.gz (every run's JSON, history and log, and chosen.json: the run
picked per model) and each chosen model's weights rounded to float16 as
NAME_fp16.npz.partN of under 16 MiB each; tools/gpu/import_weights.py and trainer.pytorch.to_keras rebuild the models.
float16 because ResNet50's float32 file (95 MB) alone is over the 64 MiB a transfer back
carries. Runs whose folder starts with "t" are teachers: never chosen (their soft
predictions come back through predict_views.py). Models are packed ResNet50 first and
skipped, with a message, if they would pass LIMIT together (predictions' room kept aside).
"""

import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np

PART = 16 * 2**20 - 4096  # the most one file sent back may be is 16 MiB
LIMIT = 61 * 2**20  # 3 MiB of the 64 kept for predictions (~0.6 MB a run) and metadata
PRIORITY = ("resnet50", "mobilenetv2", "cnn")


def write_meta(runs: Path, out: Path, chosen: dict, leave_out: str) -> None:
    """OUT/meta.tar.gz: every run's small files (not those ending in `leave_out`) and chosen.json."""
    with tarfile.open(out / "meta.tar.gz", "w:gz") as tar:
        for f in sorted(runs.glob("*/*")):
            if f.is_file() and not f.name.endswith(leave_out):
                tar.add(f, arcname=f"{f.parent.name}/{f.name}")
        info = tarfile.TarInfo("chosen.json")
        payload = json.dumps(chosen).encode()
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))


def write_parts(out: Path, name: str, data: bytes) -> None:
    """OUT/NAME_fp16.npz.part0, .part1, ...: `data` in pieces of at most PART bytes."""
    for i in range(0, len(data), PART):
        (out / f"{name}_fp16.npz.part{i // PART}").write_bytes(data[i:i + PART])


def best_runs(runs: Path, weights: str) -> dict[str, Path]:
    """Each model's run folder with the best val accuracy, among those holding `weights`
    (formatted with the model's name). Runs named t* are teachers: never chosen."""
    best = {}
    for meta_path in sorted(runs.glob("*/*.json")):
        if meta_path.name.endswith(".history.json"):
            continue
        meta, run = json.loads(meta_path.read_text()), meta_path.parent
        print(f"{run.name:6s} {meta['name']:12s} val {meta['best_val_accuracy']:.4f} at epoch "
              f"{meta['best_epoch']}/{meta['epochs_trained']}, {meta['train_seconds']:.0f} s")
        if run.name.startswith("t") or not (run / weights.format(name=meta["name"])).exists():
            continue
        if meta["name"] not in best or meta["best_val_accuracy"] > best[meta["name"]][0]:
            best[meta["name"]] = (meta["best_val_accuracy"], run)
    return {name: run for name, (_, run) in best.items()}


def main() -> None:
    runs, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    best = best_runs(runs, "{name}.keras")
    chosen = {name: run.name for name, run in best.items()}

    write_meta(runs, out, chosen, leave_out=".keras")

    import keras  # after the cheap part, so a broken Keras still sends the logs

    used = (out / "meta.tar.gz").stat().st_size
    for name in sorted(chosen, key=lambda n: PRIORITY.index(n) if n in PRIORITY else len(PRIORITY)):
        model = keras.saving.load_model(best[name] / f"{name}.keras")
        buf = io.BytesIO()
        np.savez(buf, **{f"w{i:04d}": w.astype(np.float16) for i, w in enumerate(model.get_weights())})
        data = buf.getvalue()
        if used + len(data) > LIMIT:
            print(f"{name} ({len(data) / 2**20:.1f} MiB) does not fit beside {used / 2**20:.1f} MiB: left out")
            continue
        write_parts(out, name, data)
        used += len(data)
    files = sorted(out.iterdir())
    print("chosen:", chosen)
    print("files:", [f.name for f in files], f"{sum(f.stat().st_size for f in files) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
