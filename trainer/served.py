"""Whole arrays of faces classified as the demo serves them: the targets a student distils from.

    python -m trainer.served --weights weights --data ../shared/datasets/fer2013 --out runs/resnet50/targets.npz

Each member of weights/ensemble.json predicts under the views and temperature of its NAME.json
("serving"), the members' mean gets the ensemble's own temperature: demo.classify's Ensemble,
batched over a split instead of one request's faces (tests/trainer/test_served.py checks the two agree).
The result is cached under the hashes of the model files and of the split's file list, so a
rerun, or a resumed training run, never predicts again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from trainer.calibration import ENSEMBLE_FILE, apply_temperature, serving
from trainer.views import VIEW_SETS, predict_views

log = logging.getLogger("trainer.served")
BATCH = 512


def members(weights: Path) -> list[Path]:
    """The ensemble's member files, in ensemble.json's order."""
    stored = json.loads((weights / ENSEMBLE_FILE).read_text())
    return [weights / f"{name}.keras" for name in stored["members"]]


def model_probs(path: Path, x: np.ndarray, views: str | None = None) -> np.ndarray:
    """(n, classes) probabilities of one .keras file under its served views (or `views`) and temperature."""
    import keras
    import tensorflow as tf

    model = keras.saving.load_model(path)
    fn = tf.function(lambda b: model(b, training=False))
    view_set, temperature = serving(json.loads(path.with_suffix(".json").read_text()), views)
    out = []
    for i in tqdm(range(0, len(x), BATCH), desc=f"{path.stem} ({view_set})", unit="batch", leave=False):
        out.append(predict_views(lambda v: np.asarray(fn(v)), x[i:i + BATCH], view_set))
    return apply_temperature(np.concatenate(out), temperature)


def ensemble_probs(weights: Path, x: np.ndarray, views: str | None = None) -> np.ndarray:
    """The served ensemble's probabilities for (n, 48, 48, 1) faces; `views` for every member instead of its own."""
    stored = json.loads((weights / ENSEMBLE_FILE).read_text())
    mean = np.mean([model_probs(p, x, views) for p in members(weights)], axis=0)
    return apply_temperature(mean, float(stored.get("temperature", 1.0)))


def cache_key(weights: Path, files: list[Path], views: str | None) -> str:
    digest = hashlib.sha256(str(views).encode())
    for path in [*members(weights), weights / ENSEMBLE_FILE]:
        digest.update(path.read_bytes())
    for f in files:
        digest.update(f"{f.parent.name}/{f.name}\n".encode())
    return digest.hexdigest()[:16]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer.served", description=__doc__.split("\n")[0])
    p.add_argument("--weights", type=Path, default=Path("weights"), help="folder with ensemble.json and its members")
    p.add_argument("--data", required=True, help="class-folder root with train/ and val/")
    p.add_argument("--out", required=True, type=Path, help=".npz: train and val probabilities, file names")
    p.add_argument("--splits", nargs="+", default=["train", "val"])
    p.add_argument("--views", choices=VIEW_SETS, help="these views for every member instead of each one's served "
                   "set (its temperature for them too): mirror costs a sixth of 12 crops")
    p.add_argument("--limit", type=int, help="a random N images of each split only (a rehearsal)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from trainer.data import DataError, find_splits, load_split, sample

    try:
        listed = find_splits(args.data)
        found = {s: sample(listed[s], args.limit) for s in args.splits}
    except DataError as err:
        log.error("%s", err)
        return 2
    key = cache_key(args.weights, [f for s in found.values() for f, _ in s], args.views)
    if args.out.is_file() and str(np.load(args.out)["key"]) == key:
        log.info("%s is up to date (key %s)", args.out, key)
        return 0
    arrays = {"key": np.array(key)}
    for split, items in found.items():
        data = load_split(items, 48, "grayscale", split)
        if data.skipped:
            log.error("%d unreadable files in %s: the targets would not line up", data.skipped, split)
            return 2
        arrays[split] = ensemble_probs(args.weights, data.x, args.views)
        arrays[f"{split}_files"] = np.array([f"{f.parent.name}/{f.name}" for f, _ in items])
        log.info("%s: the served ensemble is right on %.4f", split, (arrays[split].argmax(1) == data.y).mean())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
