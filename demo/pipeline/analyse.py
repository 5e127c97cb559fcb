"""Image in, faces with emotions out: detect, crop, classify in one batch, draw.

The Gradio handlers, the CLI and the benchmark all call analyse(); it returns the
face list of the /predict API and a timing breakdown in milliseconds.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np

from demo.pipeline.faces import FaceDetector, StreamSearch, crop_face
from demo.pipeline.overlay import draw_faces


@contextmanager
def timed(timings: dict, key: str):
    start = time.perf_counter()
    yield
    timings[key] = timings.get(key, 0.0) + (time.perf_counter() - start) * 1000


def face_record(box, probs: np.ndarray, class_names) -> dict:
    """The API's face dict: box, top label, its confidence and the top 3."""
    order = np.argsort(probs)[::-1]
    return {
        "box": [int(v) for v in box],
        "label": class_names[order[0]],
        "confidence": round(float(probs[order[0]]), 4),
        "top3": [[class_names[i], round(float(probs[i]), 4)] for i in order[:3]],
    }


def detect_and_classify(rgb: np.ndarray, model, detector: FaceDetector | StreamSearch | None,
                        whole_image: bool = False, timings: dict | None = None, view_set: str | None = None,
                        mirrored: bool = False):
    """(boxes, probabilities) of the faces in an RGB uint8 image; whole_image skips detection.

    view_set None: each model's served test-time views (what uploads, the API and the CLI
    get); streams (video files, the webcam) pass the model's live_views, and `mirrored` on every
    other frame, so that their trackers' averages over frames see both views for the price
    of one.
    """
    timings = {} if timings is None else timings
    h, w = rgb.shape[:2]
    with timed(timings, "detect"):
        boxes = [(0, 0, w, h)] if whole_image else [f.box for f in detector.detect(rgb)]
    return boxes, classify_faces(rgb, boxes, model, whole_image, timings, view_set, mirrored)


def classify_faces(rgb: np.ndarray, boxes, model, whole_image: bool = False, timings: dict | None = None,
                   view_set: str | None = None, mirrored: bool = False) -> np.ndarray:
    """(n, classes) probabilities of the faces at these boxes, in one model call."""
    timings = {} if timings is None else timings
    with timed(timings, "crop"):
        crops = [rgb if whole_image else crop_face(rgb, box) for box in boxes]
        if mirrored:
            crops = [np.ascontiguousarray(c[:, ::-1]) for c in crops]
    with timed(timings, "classify"):
        return model.predict(crops, view_set)


def analyse(rgb: np.ndarray, model, detector: FaceDetector | None, whole_image: bool = False,
            timings: dict | None = None) -> list[dict]:
    """Faces in an RGB uint8 image as API records (box, label, confidence, top3)."""
    boxes, probs = detect_and_classify(rgb, model, detector, whole_image, timings)
    return [face_record(box, p, model.class_names) for box, p in zip(boxes, probs)]


def analyse_batch(images: list[np.ndarray], model, detector: FaceDetector | None,
                  whole_image: bool = False) -> list[list[dict]]:
    """analyse() for many images with one model call for all their faces: archives, not streams.

    The model's cost per call is mostly fixed at small batches (bench/results/batch.md), so a
    folder of photos goes several times faster than one call per image; each face gets the
    same probabilities as alone, up to float rounding.
    """
    found = []
    for rgb in images:
        h, w = rgb.shape[:2]
        boxes = [(0, 0, w, h)] if whole_image else [f.box for f in detector.detect(rgb)]
        found.append((boxes, [rgb if whole_image else crop_face(rgb, box) for box in boxes]))
    probs = model.predict([crop for _, crops in found for crop in crops])
    out, start = [], 0
    for boxes, _ in found:
        out.append([face_record(box, p, model.class_names) for box, p in zip(boxes, probs[start:start + len(boxes)])])
        start += len(boxes)
    return out


def annotate(rgb: np.ndarray, faces: list[dict], timings: dict | None = None) -> np.ndarray:
    timings = {} if timings is None else timings
    with timed(timings, "draw"):
        return draw_faces(rgb, faces)
