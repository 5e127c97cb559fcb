"""Find faces with MediaPipe's BlazeFace (Tasks API) and cut them out for the classifier.

BlazeFace sees the whole frame at 128 x 128 (short range) or 192 x 192 (full range), so a
face that spans few model pixels is lost: in one pass over a 640 x 480 frame the full-range
model finds only half of the 40-pixel faces (bench/results/faces.md). "auto", the default,
runs the full-range model over the whole frame and over overlapping square tiles of
TILE_PER_FACE times the smallest face searched for, merges the answers with non-maximum
suppression and checks the faces it is unsure of once more in a close crop."""

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
DETECTOR_KINDS = ("auto", "full", "short")
DEFAULT_DETECTOR = "auto"
# The smallest face "auto" looks for: 40 px, or 1.5 % of the frame's long side in big photos.
MIN_FACE_PX = 40
MIN_FACE_FRACTION = 0.015
TILE_PER_FACE = 8  # the full-range model finds nearly every face spanning 1/8 of its input (bench/faces.py)
TILE_OVERLAP = 0.25  # a face up to a quarter of a tile lies whole inside one of its tiles
# Tiles multiply false faces in textures (star fields, gravel); a face found below SURE_SCORE
# is kept only if the full-range model finds it again in a crop VERIFY_CONTEXT times its box.
SURE_SCORE = 0.8
VERIFY_CONTEXT = 2.0
VERIFY_SCORE = 0.6
# Streams: the full search every SWEEP_FRAMES frames; between, faces are followed in a crop
# STREAM_CONTEXT times their last box (a face moves little in one frame).
SWEEP_FRAMES = 30
STREAM_CONTEXT = 2.5
# FER2013 crops show the whole face with some border; BlazeFace boxes are tighter.
CROP_SCALE = 1.25
CROP_SHIFT_UP = 0.05  # BlazeFace boxes sit low on the forehead; centre the crop a little higher


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in image pixels
    score: float


class FaceDetector:
    """Finds faces with one kind of search ("auto", "full" or "short"). Thread-safe: each
    MediaPipe graph is used under its own lock (one graph is not thread-safe)."""

    def __init__(self, kind: str = DEFAULT_DETECTOR, min_confidence: float = 0.5):
        if kind not in DETECTOR_KINDS:
            raise ValueError(f"unknown detector {kind!r}; choose one of {', '.join(DETECTOR_KINDS)}")
        self.kind = kind
        self.min_confidence = min_confidence
        self._graphs: dict[str, tuple] = {}
        self._graphs_lock = threading.Lock()
        self._graph("full" if kind == "auto" else kind)  # a missing model file fails here, not at the first image

    def _graph(self, model: str):
        with self._graphs_lock:
            if model not in self._graphs:
                from mediapipe.tasks.python import BaseOptions, vision

                path = DETECTORS[model]
                if not path.is_file():
                    raise FileNotFoundError(f"face detector model missing: {path}")
                options = vision.FaceDetectorOptions(
                    base_options=BaseOptions(model_asset_path=str(path)),
                    running_mode=vision.RunningMode.IMAGE,
                    min_detection_confidence=self.min_confidence,
                )
                self._graphs[model] = (vision.FaceDetector.create_from_options(options), threading.Lock())
            return self._graphs[model]

    def run(self, model: str, rgb: np.ndarray) -> list[Face]:
        """One pass of one BlazeFace model over a whole image; boxes clipped to it."""
        import mediapipe as mp

        graph, lock = self._graph(model)
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        with lock:
            result = graph.detect(image)
        h, w = rgb.shape[:2]
        faces = []
        for det in result.detections:
            b = det.bounding_box
            x0, y0 = max(0, b.origin_x), max(0, b.origin_y)
            x1, y1 = min(w, b.origin_x + b.width), min(h, b.origin_y + b.height)
            if x1 - x0 >= 8 and y1 - y0 >= 8:
                faces.append(Face((int(x0), int(y0), int(x1 - x0), int(y1 - y0)), float(det.categories[0].score)))
        return faces

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 image, largest first, boxes clipped to the image."""
        if self.kind != "auto":
            return _largest_first(self.run(self.kind, rgb))
        h, w = rgb.shape[:2]
        found = []
        for x, y, side in tiles(w, h):
            part = rgb if side is None else rgb[y : y + side, x : x + side]
            ph, pw = part.shape[:2]
            for face in self.run("full", part):
                fx, fy, fw, fh = face.box
                # A face cut by a tile's inner edge is found whole in an overlapping tile.
                if side is not None and ((fx <= 0 < x) or (fy <= 0 < y) or (fx + fw >= pw and x + pw < w)
                                         or (fy + fh >= ph and y + ph < h)):
                    continue
                found.append(Face((x + fx, y + fy, fw, fh), face.score))
        return _largest_first([f for f in suppress(found) if f.score >= SURE_SCORE or self.look_around(rgb, f.box)])

    def look_around(self, rgb: np.ndarray, box, context: float = VERIFY_CONTEXT) -> Face | None:
        """The full-range model on a square `context` times the box around it, where a face
        is large to the model: the most confident face there with score >= VERIFY_SCORE whose
        centre lies in the crop's middle half, in image coordinates; None if there is none."""
        x, y, w, h = box
        side = max(16, int(max(w, h) * context))
        x0, y0 = int(x + w / 2 - side / 2), int(y + h / 2 - side / 2)
        H, W = rgb.shape[:2]
        pad = max(0, -x0, -y0, x0 + side - W, y0 + side - H)
        image = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0))) if pad else rgb
        crop = image[y0 + pad : y0 + pad + side, x0 + pad : x0 + pad + side]
        best = None
        for face in self.run("full", crop):
            fx, fy, fw, fh = face.box
            if face.score >= VERIFY_SCORE and abs(fx + fw / 2 - side / 2) < side / 4 and abs(fy + fh / 2 - side / 2) < side / 4:
                if best is None or face.score > best.score:
                    bx0, by0 = max(0, x0 + fx), max(0, y0 + fy)
                    bx1, by1 = min(W, x0 + fx + fw), min(H, y0 + fy + fh)
                    best = Face((bx0, by0, bx1 - bx0, by1 - by0), face.score)
        return best

    def close(self):
        for graph, _ in self._graphs.values():
            graph.close()
        self._graphs.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class StreamSearch:
    """"auto" for a stream of frames (a video, a webcam), where the full search of every
    frame costs too much: the short-range model over each whole frame, the full-range model
    around each face of the frame before that it missed, and the full search every
    SWEEP_FRAMES frames to find new small faces. One per stream; other kinds pass through."""

    def __init__(self, detector: FaceDetector):
        self.detector = detector
        self.frames = 0
        self.faces: list[Face] = []

    def detect(self, rgb: np.ndarray) -> list[Face]:
        if self.detector.kind != "auto":
            return self.detector.detect(rgb)
        if self.frames % SWEEP_FRAMES == 0:
            faces = self.detector.detect(rgb)
        else:
            faces = self.detector.run("short", rgb)
            for old in self.faces:
                if not any(_overlap(old.box, f.box) for f in faces):
                    again = self.detector.look_around(rgb, old.box, STREAM_CONTEXT)
                    if again is not None:
                        faces.append(again)
            faces = _largest_first(suppress(faces))
        self.frames += 1
        self.faces = faces
        return faces


def _largest_first(faces: list[Face]) -> list[Face]:
    return sorted(faces, key=lambda f: -f.box[2] * f.box[3])


def _overlap(a, b) -> bool:
    return min(a[0] + a[2], b[0] + b[2]) > max(a[0], b[0]) and min(a[1] + a[3], b[1] + b[3]) > max(a[1], b[1])


def tiles(w: int, h: int) -> list[tuple[int, int, int | None]]:
    """(x, y, side) of the squares "auto" searches: the whole frame (side None), then tiles
    TILE_PER_FACE times the smallest face, and twice, four times that..., overlapping by a quarter."""
    long_side = max(w, h)
    side = int(TILE_PER_FACE * max(MIN_FACE_PX, MIN_FACE_FRACTION * long_side))
    out: list[tuple[int, int, int | None]] = [(0, 0, None)]
    finest = side
    while side < long_side and (side == finest or side < 0.75 * long_side):  # else: the whole frame again
        out += [(x, y, side) for y in _starts(h, side) for x in _starts(w, side)]
        side *= 2
    return out


def _starts(length: int, side: int) -> list[int]:
    if side >= length:
        return [0]
    stride = int(side * (1 - TILE_OVERLAP))
    starts = list(range(0, length - side, stride))
    return starts + [length - side]


def suppress(faces: list[Face], iou: float = 0.3, inside: float = 0.6) -> list[Face]:
    """Non-maximum suppression: of faces overlapping by IoU > iou, or one lying mostly
    (> inside of its area) within another, keep the most confident."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: -f.score):
        x, y, w, h = face.box
        for k in kept:
            kx, ky, kw, kh = k.box
            iw = max(0, min(x + w, kx + kw) - max(x, kx))
            ih = max(0, min(y + h, ky + kh) - max(y, ky))
            common = iw * ih
            if common > iou * (w * h + kw * kh - common) or common > inside * min(w * h, kw * kh):
                break
        else:
            kept.append(face)
    return kept


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
