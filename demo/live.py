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
from PIL import Image, ImageDraw, ImageFont

from demo.faces import FaceDetector
from demo.overlay import colour_for
from demo.pipeline import annotate, detect_and_classify, face_record
from demo.tracking import Tracker

JPEG_QUALITY = 80  # the browser's own webcam frames come as JPEG; this keeps a frame ~30 KB at 640 x 480
TIMELINE_EVERY_S = 0.5
# No mirror image on the live path: it would double the model's work per frame, and the
# tracker's moving average over frames already steadies the label (bench/webcam.py).
LIVE_FLIP_TTA = False


def jpeg_data_url(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").save(buf, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def process_frame(rgb: np.ndarray, model, detector: FaceDetector, tracker: Tracker,
                  now: float | None = None) -> tuple[np.ndarray, str]:
    """Detect, classify, track and draw one frame: (annotated frame, one-line readout)."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    boxes, probs = detect_and_classify(rgb, model, detector, timings=timings, flip_tta=LIVE_FLIP_TTA)
    probs, ids = tracker.update(boxes, probs, time.monotonic() if now is None else now)
    faces = [face_record(box, p, model.class_names) for box, p in zip(boxes, probs)]
    out = annotate(rgb, faces, timings)
    total = (time.perf_counter() - start) * 1000
    parts = ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
    readout = (f"{model.name} · {total:.0f} ms per frame ({parts} ms; no mirror view) · "
               f"{len(faces)} face{'s' if len(faces) != 1 else ''}")
    if faces:
        readout += " · " + "; ".join(f"{f['label']} {f['confidence']:.0%}" for f in faces)
    return out, readout


def timeline_image(tracker: Tracker | None, class_names, size=(480, 240)) -> np.ndarray | None:
    """The largest face's smoothed probabilities over the last ~30 s, drawn as a small chart.

    Drawn here (about a millisecond) rather than sent as data to a plot component: a
    browser-side chart re-rendered a few times a second took the main thread from the
    webcam and cut the live frame rate from ~24 to ~15 frames a second (bench/webcam.py).
    """
    if tracker is None:
        return None
    seconds, probs = tracker.timeline()
    if not len(seconds):
        return None
    w, h = size
    left, right, top, bottom = 34, 10, 10, 46
    im = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=11)
    pw, ph = w - left - right, h - top - bottom

    def xy(sec, p):
        return left + (sec + tracker.history_s) / tracker.history_s * pw, top + (1 - p) * ph

    for p in (0.0, 0.5, 1.0):
        draw.line([xy(-tracker.history_s, p), xy(0, p)], fill=(225, 225, 225))
        draw.text((4, xy(0, p)[1] - 6), f"{p:.1f}", fill=(90, 90, 90), font=font)
    for sec in range(-int(tracker.history_s), 1, 10):
        x, y = xy(sec, 0)
        draw.text((x - 8, y + 3), f"{sec}s" if sec else "now", fill=(90, 90, 90), font=font)
    for k, name in enumerate(class_names):
        colour = colour_for(name)
        points = [xy(sec, p) for sec, p in zip(seconds, probs[:, k])]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        lx = left + k * (pw // max(1, len(class_names)))
        draw.rectangle((lx, h - 14, lx + 8, h - 6), fill=colour)
        draw.text((lx + 11, h - 17), name, fill=(40, 40, 40), font=font)
    return np.asarray(im)
