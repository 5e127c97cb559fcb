"""Augmentation on the host: random affine warps and camera corruptions (in CPU worker threads), mixup.

The in-model Keras layers (RandomRotation, RandomZoom, RandomTranslation) are fast under
TensorFlow on a CPU, but under JAX or PyTorch on a GPU each costs about 0.4 s per batch
(measured on an H100, Keras 3.15), which turns a 1-second epoch into minutes. Here the same
ranges (trainer.pixels.ROTATION, ZOOM, TRANSLATION) become one OpenCV warp per image,
about 10 microseconds each for a 48 x 48 face; the model keeps the cheap photometric layers.
"""

from __future__ import annotations

import math

import cv2
import keras
import numpy as np

from trainer.classes import class_weight_vector
from trainer.corruptions import random_corruptions
from trainer.pixels import ROTATION, TRANSLATION, ZOOM


def random_affine(x: np.ndarray, rng: np.random.Generator, rotation: float = ROTATION, zoom: float = ZOOM,
                  translation: float = TRANSLATION) -> np.ndarray:
    """Rotate (fraction of a turn), zoom and shift each image of (n, h, w, c) by random amounts.

    Edges are filled by repeating the border pixels, as the Keras layers' fill_mode="nearest".
    """
    n, h, w, c = x.shape
    out = np.empty_like(x, dtype=np.float32)
    angles = rng.uniform(-rotation, rotation, n) * 360.0
    scales = 1.0 + rng.uniform(-zoom, zoom, n)
    shifts = rng.uniform(-translation, translation, (n, 2)) * (w, h)
    for i in range(n):
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angles[i], scales[i])
        m[:, 2] += shifts[i]
        warped = cv2.warpAffine(np.ascontiguousarray(x[i], dtype=np.float32), m, (w, h),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out[i] = warped.reshape(h, w, c)
    return out


def mixup(x: np.ndarray, y: np.ndarray, w: np.ndarray, rng: np.random.Generator, alpha: float):
    """Blend each image and its targets with another image of the batch (Zhang et al., 2018).

    The blend weight is drawn per image from Beta(alpha, alpha) and folded above 0.5, so the
    original image always dominates; sample weights (the class weights) blend the same way.
    Meant against the cnn's over-fitting on FER2013 (train 0.90, val 0.66); what it measured
    there is in weights/README.md.
    """
    lam = rng.beta(alpha, alpha, len(x)).astype(np.float32)
    lam = np.maximum(lam, 1 - lam)
    other = rng.permutation(len(x))

    def mix(a):
        t = lam.reshape((-1,) + (1,) * (a.ndim - 1))  # broadcast over each item's own axes
        return t * a + (1 - t) * a[other]

    return mix(x).astype(np.float32), mix(y).astype(np.float32), mix(w).astype(np.float32)


class HostAugmentedBatches(keras.utils.PyDataset):
    """Shuffled batches of (warped float32 pixels, one-hot targets, sample weights) for model.fit.

    Sample weights carry the class weights, since Keras takes class_weight only with arrays.
    Each batch draws from its own seeded generator, so a run is repeatable whatever the
    order the worker threads finish in.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, class_weight: dict | None = None,
                 seed: int = 0, max_batches: int | None = None, workers: int = 4, mixup_alpha: float = 0.0,
                 labels: np.ndarray | None = None, corruption: float = 0.0):
        super().__init__(workers=workers, use_multiprocessing=False)
        self.x, self.y, self.batch_size, self.seed, self.mixup_alpha = x, y, batch_size, seed, mixup_alpha
        self.corruption = corruption  # the share of images under a random camera corruption
        # Class weights follow the hard labels (y may be a teacher's soft targets).
        self.sample_weight = class_weight_vector(class_weight)[y.argmax(1) if labels is None else labels]
        self.n_batches = math.ceil(len(x) / batch_size)
        if max_batches:
            self.n_batches = min(self.n_batches, max_batches)
        self.epoch = 0
        self.order = np.random.default_rng(seed).permutation(len(x))

    def __len__(self) -> int:
        return self.n_batches

    def __getitem__(self, index):
        idx = np.sort(self.order[index * self.batch_size:(index + 1) * self.batch_size])
        rng = np.random.default_rng((self.seed, self.epoch, index))
        x = random_affine(self.x[idx], rng)
        if self.corruption:
            x = random_corruptions(x, rng, self.corruption)
        batch = x, self.y[idx], self.sample_weight[idx]
        return mixup(*batch, rng, self.mixup_alpha) if self.mixup_alpha else batch

    def on_epoch_end(self):
        self.epoch += 1
        self.order = np.random.default_rng((self.seed, self.epoch)).permutation(len(self.x))
