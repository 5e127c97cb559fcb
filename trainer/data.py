"""Read class-folder image data into arrays and tf.data pipelines.

Layouts accepted (``<root>/<split>/<class>/*``):
- train/ + val/ (or validation/) + test/: used as they are;
- train/ + test/: a stratified validation set is carved out of train;
- <root>/<class>/ only: a stratified 80/10/10 split.
Images are decoded once with Pillow (grayscale or RGB, resized to the model's
input size) and kept in memory as uint8; the model does the rest.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from trainer.classes import CLASS_NAMES, NUM_CLASSES, class_weight_vector

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
VAL_NAMES = ("val", "validation")
SPLIT_SEED = 1337


class DataError(ValueError):
    """A data folder that cannot be used; the message names the path."""


@dataclass
class Split:
    x: np.ndarray  # (n, h, w, c) uint8
    y: np.ndarray  # (n,) int32 class indices in CLASS_NAMES order
    skipped: int = 0  # unreadable files left out
    targets: np.ndarray | None = None  # (n, classes) soft targets (trainer.distill) instead of one-hot y

    def __len__(self) -> int:
        return len(self.y)


def list_class_folder(folder: Path, class_names=CLASS_NAMES) -> list[tuple[Path, int]]:
    """(file, label) pairs of one split folder; strict about its layout."""
    if not folder.is_dir():
        raise DataError(f"not a folder: {folder}")
    present = {p.name for p in folder.iterdir() if p.is_dir()}
    unknown = sorted(present - set(class_names))
    if unknown:
        raise DataError(
            f"unknown class folder(s) {unknown} in {folder}; expected only {list(class_names)}"
        )
    items = []
    for label, name in enumerate(class_names):
        class_dir = folder / name
        if not class_dir.is_dir():
            raise DataError(f"missing class folder {class_dir}")
        files = sorted(
            p for p in class_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not files:
            raise DataError(f"empty class folder {class_dir} (no image files)")
        items += [(p, label) for p in files]
    return items


def find_splits(root: str | os.PathLike) -> dict[str, list[tuple[Path, int]]]:
    """Map 'train'/'val'/'test' to (file, label) lists, carving splits when needed."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder does not exist: {root}")
    subdirs = {p.name for p in root.iterdir() if p.is_dir()}
    val_name = next((n for n in VAL_NAMES if n in subdirs), None)
    if "train" in subdirs:
        if "test" not in subdirs:
            raise DataError(f"{root} has train/ but no test/ split folder")
        splits = {"train": list_class_folder(root / "train"), "test": list_class_folder(root / "test")}
        if val_name:
            splits["val"] = list_class_folder(root / val_name)
        else:
            splits["train"], splits["val"] = _stratified_split(splits["train"], 0.1)
        return splits
    if "test" in subdirs or val_name:
        raise DataError(f"{root} has split folders but no train/ split folder")
    if not subdirs:
        raise DataError(
            f"{root} has no class folders; expected <root>/train/<class>/ "
            f"or <root>/<class>/ with classes {list(CLASS_NAMES)}"
        )
    # A single folder of class folders: stratified 80/10/10.
    rest, test = _stratified_split(list_class_folder(root), 0.1)
    train, val = _stratified_split(rest, 1 / 9)
    return {"train": train, "val": val, "test": test}


def _stratified_split(items, fraction):
    """Split (file, label) pairs, taking `fraction` of every class (at least one) aside."""
    rng = np.random.default_rng(SPLIT_SEED)
    keep, aside = [], []
    labels = np.array([label for _, label in items])
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        rng.shuffle(idx)
        n_aside = max(1, int(round(len(idx) * fraction))) if len(idx) > 1 else 0
        aside += [items[i] for i in idx[:n_aside]]
        keep += [items[i] for i in idx[n_aside:]]
    return keep, aside


def detect_color_mode(files: list[Path], sample: int = 200) -> str:
    """'grayscale' when every sampled image is single-channel, else 'rgb'."""
    for path in files[:: max(1, len(files) // sample)]:
        try:
            with Image.open(path) as im:
                if im.mode not in ("L", "1", "I", "I;16", "LA"):
                    return "rgb"
        except OSError:
            continue
    return "grayscale"


def load_image(path, size: int, color_mode: str) -> np.ndarray:
    """One image file as uint8 (size, size, c); raises OSError if it cannot be read."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        im = im.convert("L" if color_mode == "grayscale" else "RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BILINEAR)
        arr = np.asarray(im, dtype=np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def load_split(items, size: int, color_mode: str, name: str = "") -> Split:
    """Decode every file of a split once; unreadable files are skipped and counted."""

    def read(item):
        try:
            return load_image(item[0], size, color_mode)
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            log.warning("skipping unreadable image %s (%s)", item[0], err)
            return None

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        arrays = list(pool.map(read, items))
    ok = [i for i, a in enumerate(arrays) if a is not None]
    skipped = len(items) - len(ok)
    if not ok:
        raise DataError(f"no readable images in split {name!r}")
    x = np.stack([arrays[i] for i in ok])
    y = np.array([items[i][1] for i in ok], dtype=np.int32)
    log.info("%s: %d images, %d unreadable skipped", name or "split", len(y), skipped)
    return Split(x=x, y=y, skipped=skipped)


def load_dataset(root, size: int, color_mode: str = "auto", splits=("train", "val", "test")):
    """Load the requested splits of a data folder; returns ({split: Split}, color_mode)."""
    found = find_splits(root)
    if color_mode == "auto":
        color_mode = detect_color_mode([p for p, _ in found["train"]])
    return {s: load_split(found[s], size, color_mode, s) for s in splits}, color_mode


def one_hot_arrays(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """(float32 0-255 pixels, one-hot or soft targets) in memory, for backends without tf.data."""
    targets = split.targets if split.targets is not None else np.eye(NUM_CLASSES, dtype="float32")[split.y]
    return split.x.astype("float32"), targets.astype("float32")


def make_tf_dataset(split: Split, batch_size: int, shuffle: bool, seed: int = 0,
                    class_weight: dict | None = None, mixup_alpha: float = 0.0):
    """In-memory uint8 arrays -> batched, prefetched tf.data of (float32 0-255 pixels, one-hot[, weights]).

    class_weight turns into per-image sample weights (what Keras' class_weight does), so that
    mixup (trainer.augment.mixup, in NumPy on the host) can blend them too.
    """
    import tensorflow as tf

    soft = split.targets is not None
    ds = tf.data.Dataset.from_tensor_slices((split.x, split.y, split.targets if soft else split.y))
    if shuffle:
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    weights = tf.constant(class_weight_vector(class_weight))
    carry_weights = bool(class_weight or mixup_alpha)

    # One-hot targets so the loss can use label smoothing; soft ones (distillation) as given.
    # Class weights follow the hard label either way.
    def targets(x, y, given):
        x = tf.cast(x, tf.float32)
        target = tf.cast(given, tf.float32) if soft else tf.one_hot(y, NUM_CLASSES)
        return (x, target, tf.gather(weights, y)) if carry_weights else (x, target)

    ds = ds.batch(batch_size).map(targets, num_parallel_calls=tf.data.AUTOTUNE)
    if mixup_alpha:
        from trainer.augment import mixup

        rng = np.random.default_rng(seed)

        def blend(x, y, w):
            outs = tf.numpy_function(lambda *batch: mixup(*batch, rng, mixup_alpha), [x, y, w], [tf.float32] * 3)
            for t, ref in zip(outs, (x, y, w)):
                t.set_shape(ref.shape)
            return tuple(outs)

        ds = ds.map(blend)  # sequential: one generator, so a seeded run repeats
    return ds.prefetch(tf.data.AUTOTUNE)


def sample(items: list, limit: int | None, seed: int = 0) -> list:
    """A random `limit` of a split's (file, label) pairs, in their listed order (all if None): rehearsals."""
    if not limit or limit >= len(items):
        return items
    keep = np.sort(np.random.default_rng(seed).permutation(len(items))[:limit])
    return [items[i] for i in keep]
