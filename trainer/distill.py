"""Train a student on a teacher ensemble's soft predictions mixed with the hard labels.

    python -m trainer.distill --teachers weights/cnn.keras runs/t1/cnn.keras runs/t2/cnn.keras \\
        --data ../shared/datasets/fer2013 --out runs/student -- --model cnn --width 48 --time-budget 80

Each teacher predicts the train and val images once, averaged over its test-time views
(trainer.views), and the result is cached in OUT/teacher_cache/ under the file's hash, so a
second run or --resume costs what one training run costs. The targets are the teachers' mean,
sharpened or softened by --temperature (p ** (1/T), renormalised: T > 1 spreads the dark
knowledge in the small probabilities), blended with the one-hot label: alpha * soft +
(1 - alpha) * label. Everything after "--" goes to trainer.train (with --soft-targets added),
which writes OUT/NAME.keras and NAME.json as for any run; the JSON gains "distillation".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path

import numpy as np

from trainer.classes import NUM_CLASSES
from trainer.views import VIEW_SETS, predict_views

log = logging.getLogger("trainer.distill")


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def teacher_predictions(path: Path, splits: dict, views: str, cache: Path) -> dict[str, np.ndarray]:
    """{split: (n, classes) mean probabilities over the views}, computed once per teacher file."""
    # Keyed by content alone: the same file under another name or folder is not predicted again.
    cached = cache / f"{file_hash(path)}-{views}.npz"
    if cached.exists():
        stored = np.load(cached)
        if all(stored[s].shape == (len(splits[s]), NUM_CLASSES) for s in splits):
            return {s: stored[s] for s in splits}
    import keras

    model = keras.saving.load_model(path)
    size, channels = model.input_shape[1], model.input_shape[-1]
    out = {}
    for name, split in splits.items():
        if split.x.shape[1:] != (size, size, channels):
            raise SystemExit(f"teacher {path} takes {size}x{size}x{channels} images; the data is "
                             f"{split.x.shape[1:]}: give teachers of the student's input")
        out[name] = predict_views(lambda x: model.predict(x, batch_size=256, verbose=0), split.x, views)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(cached, **out)
    return out


def soft_targets(mean_probs: np.ndarray, labels: np.ndarray, temperature: float, alpha: float) -> np.ndarray:
    """alpha * (teacher mean at temperature T) + (1 - alpha) * one-hot label, rows summing to 1."""
    tempered = np.power(np.clip(mean_probs, 1e-8, 1.0), 1.0 / temperature)
    tempered /= tempered.sum(axis=1, keepdims=True)
    return (alpha * tempered + (1 - alpha) * np.eye(NUM_CLASSES)[labels]).astype(np.float32)


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float((probs.argmax(1) == labels).mean())


def parse_args(argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    train_args = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(prog="python -m trainer.distill", description=__doc__.split("\n")[0])
    p.add_argument("--teachers", nargs="+", required=True, type=Path, help="teacher .keras files")
    p.add_argument("--data", required=True, help="class-folder root with train/ and val/")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--views", choices=VIEW_SETS, default="crops", help="teachers' test-time views (default crops)")
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--alpha", type=float, default=0.7, help="weight of the teachers against the label")
    args = p.parse_args(own)
    if not args.temperature > 0 or not 0 <= args.alpha <= 1:
        p.error("--temperature must be > 0 and --alpha within [0, 1]")
    missing = [str(t) for t in args.teachers if not t.is_file()]
    if missing:
        p.error(f"teacher file(s) not found: {missing}")
    return args, train_args


def main(argv=None) -> int:
    args, train_args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from trainer import train
    from trainer.data import DataError, load_dataset

    try:  # the teachers' input: 48x48 grey, as the cnn student's
        splits, _ = load_dataset(args.data, 48, "grayscale", ("train", "val"))
    except DataError as err:
        log.error("%s", err)
        return 2
    preds = []
    record = {"views": args.views, "temperature": args.temperature, "alpha": args.alpha, "teachers": []}
    for path in args.teachers:
        p = teacher_predictions(path, splits, args.views, args.out / "teacher_cache")
        preds.append(p)
        record["teachers"].append({"file": str(path), "sha256_12": file_hash(path),
                                   "val_accuracy": accuracy(p["val"], splits["val"].y)})
        log.info("teacher %s: val %.4f (%s views)", path, record["teachers"][-1]["val_accuracy"], args.views)
    mean = {s: np.mean([p[s] for p in preds], axis=0) for s in ("train", "val")}
    record["ensemble_val_accuracy"] = accuracy(mean["val"], splits["val"].y)
    record["ensemble_train_accuracy"] = accuracy(mean["train"], splits["train"].y)
    log.info("teacher ensemble: val %.4f, train %.4f", record["ensemble_val_accuracy"],
             record["ensemble_train_accuracy"])
    args.out.mkdir(parents=True, exist_ok=True)
    targets_path = args.out / "soft_targets.npy"
    np.save(targets_path, soft_targets(mean["train"], splits["train"].y, args.temperature, args.alpha))
    (args.out / "teachers.json").write_text(json.dumps(record, indent=2))

    train_argv = [*train_args, "--data", args.data, "--out", str(args.out), "--soft-targets", str(targets_path)]
    if "--label-smoothing" not in train_args:
        train_argv += ["--label-smoothing", "0"]  # the soft targets already spread the mass
    code = train.main(train_argv)
    if code == 0:
        name = train.parse_args(train_argv).model
        meta_path = args.out / f"{name}.json"
        meta = json.loads(meta_path.read_text())
        meta["distillation"] = record
        meta_path.write_text(json.dumps(meta, indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
