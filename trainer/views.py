"""Test-time views: the one definition of which copies of a face are averaged at inference.

    probs = predict_views(model.predict, faces, "crops")

A view set is a name: "none" (the face as it is), "mirror" (plus its left-right mirror)
or "crops" (mirror x five crops of 11/12 of the side, at the centre and the four corners,
each resized back to the input size: 12 views). Measured on the cnn shipped before
multi-view averaging (FER2013): val 0.662 / 0.672 / 0.694 for none / mirror / crops.
trainer.evaluate, trainer.compare, tools/gpu and the demo all take views from here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

VIEW_SETS = ("none", "mirror", "crops")
CROP_FRACTION = 11 / 12  # 44 of 48 pixels


def _crop_boxes(size: int) -> list[tuple[int, int]]:
    """Top-left corners of the centre and four corner crops of a size x size face."""
    crop = round(size * CROP_FRACTION)
    far, mid = size - crop, (size - crop) // 2
    return [(mid, mid), (0, 0), (0, far), (far, 0), (far, far)]


def view_count(view_set: str) -> int:
    return {"none": 1, "mirror": 2, "crops": 12}[check_view_set(view_set)]


def describe(view_set: str) -> str:
    """A view set as a reader of the page understands it: how many views, then what they are."""
    n = view_count(view_set)
    return {"none": "1 view per face", "mirror": f"{n} views per face (plain and mirrored)",
            "crops": f"{n} views per face (5 crops, each plain and mirrored)"}[view_set]


def check_view_set(view_set: str) -> str:
    if view_set not in VIEW_SETS:
        raise ValueError(f"unknown view set {view_set!r}; choose one of {list(VIEW_SETS)}")
    return view_set


def _resize_matrix(src: int, dst: int) -> np.ndarray:
    """(dst, src) bilinear weights with half-pixel centres and edge clamping, as cv2.INTER_LINEAR."""
    pos = np.clip((np.arange(dst) + 0.5) * src / dst - 0.5, 0, src - 1)
    low = np.floor(pos).astype(int)
    high = np.minimum(low + 1, src - 1)
    frac = pos - low
    m = np.zeros((dst, src))
    m[np.arange(dst), low] += 1 - frac
    m[np.arange(dst), high] += frac
    return m.astype(np.float32)


def views(x: np.ndarray, view_set: str):
    """Yield each view of a batch of faces (n, h, w, c) as float32 pixels of the same shape.

    NumPy only (the demo imports this without OpenCV): crops are resized back with one
    matrix product per axis.
    """
    check_view_set(view_set)
    x = np.asarray(x, dtype=np.float32)
    yield x
    if view_set == "none":
        return
    mirrored = x[:, :, ::-1]
    yield mirrored
    if view_set == "mirror":
        return
    n, h, w, c = x.shape
    crop = round(h * CROP_FRACTION)
    rows, cols = _resize_matrix(crop, h), _resize_matrix(crop, w)
    for source in (x, mirrored):
        for top, left in _crop_boxes(h):
            patch = source[:, top:top + crop, left:left + crop]
            yield np.einsum("ij,njkc,lk->nilc", rows, patch, cols, optimize=True).astype(np.float32)


def predict_views(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, view_set: str) -> np.ndarray:
    """Mean of predict(view) over the views of x: (n, classes) probabilities."""
    total = None
    for view in views(x, view_set):
        probs = np.asarray(predict(view), dtype=np.float64)
        total = probs if total is None else total + probs
    return (total / view_count(view_set)).astype(np.float32)
