"""Find faces with MediaPipe's BlazeFace (Tasks API) and cut them out for the classifier."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
DETECTORS = {
    "short": WEIGHTS / "face_detection_short_range.tflite",  # faces within ~2 m: webcams, portraits
    "full": WEIGHTS / "face_detection_full_range_sparse.tflite",  # small or distant faces, groups
}
# FER2013 crops show the whole face with some border; BlazeFace boxes are tighter.
CROP_SCALE = 1.25
CROP_SHIFT_UP = 0.05  # BlazeFace boxes sit low on the forehead; centre the crop a little higher


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in image pixels
    score: float


class FaceDetector:
    """A MediaPipe FaceDetector. detect() is serialised: one graph is not thread-safe."""

    def __init__(self, kind: str = "short", min_confidence: float = 0.5):
        from mediapipe.tasks.python import BaseOptions, vision

        if kind not in DETECTORS:
            raise ValueError(f"unknown detector {kind!r}; choose one of {sorted(DETECTORS)}")
        path = DETECTORS[kind]
        if not path.is_file():
            raise FileNotFoundError(f"face detector model missing: {path}")
        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=min_confidence,
        )
        self.kind = kind
        self._detector = vision.FaceDetector.create_from_options(options)
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 image, largest first, boxes clipped to the image."""
        import mediapipe as mp

        h, w = rgb.shape[:2]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        with self._lock:
            result = self._detector.detect(image)
        faces = []
        for det in result.detections:
            b = det.bounding_box
            x0, y0 = max(0, b.origin_x), max(0, b.origin_y)
            x1, y1 = min(w, b.origin_x + b.width), min(h, b.origin_y + b.height)
            if x1 - x0 >= 8 and y1 - y0 >= 8:
                faces.append(Face((int(x0), int(y0), int(x1 - x0), int(y1 - y0)), float(det.categories[0].score)))
        return sorted(faces, key=lambda f: -f.box[2] * f.box[3])

    def close(self):
        self._detector.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def crop_face(rgb: np.ndarray, box, scale: float = CROP_SCALE) -> np.ndarray:
    """A square crop around a face box, enlarged by `scale`; edges beyond the image are replicated."""
    x, y, w, h = box
    side = max(1, int(round(max(w, h) * scale)))
    cx, cy = x + w / 2, y + h / 2 - CROP_SHIFT_UP * h
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    H, W = rgb.shape[:2]
    pad = max(0, -x0, -y0, x0 + side - W, y0 + side - H)
    if pad:
        rgb = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        x0, y0 = x0 + pad, y0 + pad
    return rgb[y0 : y0 + side, x0 : x0 + side]
