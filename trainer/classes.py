"""The one place that defines the emotion classes, their order, and how much each counts in training.

Every model the trainer writes stores this list beside it (NAME.json), so the
demo reads class names from the model, never from here.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
NUM_CLASSES = len(CLASS_NAMES)


def balanced_class_weights(y: np.ndarray, power: float = 1.0) -> dict[int, float]:
    """scikit-learn's 'balanced' weights, n / (k * count), raised to `power`, as Keras' class_weight dict.

    power 1 is fully balanced (best macro recall), 0 is unweighted (best accuracy); in between
    (0.5: the square root) trades a little rare-class recall for overall accuracy.
    """
    from sklearn.utils.class_weight import compute_class_weight

    classes = np.unique(y)
    weights = compute_class_weight("balanced", classes=classes, y=y) ** power
    return {int(c): float(w) for c, w in zip(classes, weights)}


def class_weight_vector(class_weight: dict | None) -> np.ndarray:
    """Keras' class_weight dict as one float32 weight per class index (1 where unset)."""
    weights = np.ones(NUM_CLASSES, np.float32)
    for k, v in (class_weight or {}).items():
        weights[k] = v
    return weights
