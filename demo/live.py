"""The live webcam path: one frame in, the annotated frame and a readout out, plus the timeline.

Each viewer has a Tracker of its own (gr.State). The frame comes back as a JPEG data URL
(demo.ui.LiveImage), so live frames never touch the server's disk and the browser needs no
second request to show them.
"""

from __future__ import annotations

import base64
import io
import time

import numpy as np
from PIL import Image

from demo.charts import line_chart
from demo.faces import FaceDetector
from demo.pipeline import annotate, detect_and_classify, face_record
from demo.tracking import Tracker

JPEG_QUALITY = 80  # the browser's own webcam frames come as JPEG; this keeps a frame ~30 KB at 640 x 480
TIMELINE_EVERY_S = 0.5


def jpeg_data_url(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").save(buf, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def process_frame(rgb: np.ndarray, model, detector: FaceDetector, tracker: Tracker,
                  now: float | None = None) -> tuple[np.ndarray, str]:
    """Detect, classify, track and draw one frame: (annotated frame, one-line readout)."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    # Each model's "live_views" (NAME.json, plain by default): extra views would multiply the
    # model's work per frame, and the tracker's moving average over frames already steadies
    # the label (bench/webcam.py).
    boxes, probs = detect_and_classify(rgb, model, detector, timings=timings, view_set=model.live_views)
    probs, ids = tracker.update(boxes, probs, time.monotonic() if now is None else now)
    faces = [face_record(box, p, model.class_names) for box, p in zip(boxes, probs)]
    out = annotate(rgb, faces, timings)
    total = (time.perf_counter() - start) * 1000
    parts = ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
    readout = (f"{model.name} · {total:.0f} ms per frame ({parts} ms; {model.live_views} views) · "
               f"{len(faces)} face{'s' if len(faces) != 1 else ''}")
    if faces:
        readout += " · " + "; ".join(f"{f['label']} {f['confidence']:.0%}" for f in faces)
    return out, readout


def timeline_image(tracker: Tracker | None, class_names) -> np.ndarray | None:
    """The largest face's smoothed probabilities over the last ~30 s, as a small chart."""
    if tracker is None:
        return None
    seconds, probs = tracker.timeline()
    if not len(seconds):
        return None
    return line_chart(seconds, probs, class_names, -tracker.history_s, 0.0,
                      tick_label=lambda t: f"{t:g}s" if t else "now")
