"""The live webcam path: one frame in, the annotated frame and a readout out, plus the timeline.

Each viewer has a Tracker of its own (gr.State). The frame comes back as a JPEG data URL
(demo.ui.LiveImage), so live frames never touch the server's disk and the browser needs no
second request to show them.
"""

from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from demo.charts import line_chart
from demo.faces import FaceDetector
from demo.pipeline import annotate, detect_and_classify, face_record
from demo.tracking import Tracker

JPEG_QUALITY = 80  # the browser's own webcam frames come as JPEG; this keeps a frame ~30 KB at 640 x 480
TIMELINE_EVERY_S = 0.5
READOUT_EVERY_S = 0.25


def jpeg_data_url(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").save(buf, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


@dataclass
class Viewer:
    """One webcam viewer's state (gr.State): their face tracker and the readout's running totals."""
    tracker: Tracker = field(default_factory=Tracker)
    frames: int = 0  # frames since the last readout
    ms: dict = field(default_factory=dict)  # their summed timings, stage by stage
    since: float | None = None  # when the last readout was written


def process_frame(rgb: np.ndarray, model, detector: FaceDetector, viewer: Viewer,
                  now: float | None = None) -> tuple[np.ndarray, str | None]:
    """Detect, classify, track and draw one frame: (annotated frame, readout or None).

    The readout (frame rate and the mean cost of each stage) is written READOUT_EVERY_S at
    most: a text update per frame is work for the viewer's browser that nobody can read.
    """
    now = time.monotonic() if now is None else now
    timings: dict[str, float] = {}
    start = time.perf_counter()
    # Each model's "live_views" (NAME.json, plain by default): extra views would multiply the
    # model's work per frame, and the tracker's moving average over frames already steadies
    # the label (bench/webcam.py).
    boxes, probs = detect_and_classify(rgb, model, detector, timings=timings, view_set=model.live_views)
    probs, ids = viewer.tracker.update(boxes, probs, now)
    faces = [face_record(box, p, model.class_names) for box, p in zip(boxes, probs)]
    out = annotate(rgb, faces, timings)
    timings["total"] = (time.perf_counter() - start) * 1000
    viewer.frames += 1
    for k, v in timings.items():
        viewer.ms[k] = viewer.ms.get(k, 0.0) + v
    if viewer.since is not None and now - viewer.since < READOUT_EVERY_S:
        return out, None
    n, elapsed = viewer.frames, (now - viewer.since if viewer.since is not None else 0.0)
    mean = {k: v / n for k, v in viewer.ms.items()}
    total = mean.pop("total")
    parts = ", ".join(f"{k} {v:.0f}" for k, v in mean.items())
    readout = f"{model.name} · {total:.0f} ms per frame ({parts} ms; {model.live_views} views)"
    if elapsed > 0:
        readout += f" · {n / elapsed:.0f} frames/s"
    readout += f" · {len(faces)} face{'s' if len(faces) != 1 else ''}"
    if faces:
        readout += " · " + "; ".join(f"{f['label']} {f['confidence']:.0%}" for f in faces)
    viewer.frames, viewer.ms, viewer.since = 0, {}, now
    return out, readout


def timeline_image(viewer: Viewer | None, class_names) -> np.ndarray | None:
    """The largest face's smoothed probabilities over the last ~30 s, as a small chart."""
    if viewer is None:
        return None
    tracker = viewer.tracker
    seconds, probs = tracker.timeline()
    if not len(seconds):
        return None
    return line_chart(seconds, probs, class_names, -tracker.history_s, 0.0,
                      tick_label=lambda t: f"{t:g}s" if t else "now")
