"""The live webcam path: one frame in, the annotated frame and a readout out, plus the timeline.

Each viewer has a Tracker of its own (a Viewer, held in Viewers by their Gradio session). The
frame comes back as a JPEG data URL (demo.web.page.InlineImage), so live frames never touch the
server's disk and the browser needs no second request to show them.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from demo.pipeline.analyse import annotate, classify_faces, face_record, timed
from demo.pipeline.charts import line_chart
from demo.pipeline.faces import FaceDetector, StreamSearch
from demo.pipeline.tracking import VIEWER_IDLE_S, Tracker
from trainer.views import describe

log = logging.getLogger("ekspresi.live")

JPEG_QUALITY = 80  # the browser's own webcam frames come as JPEG; this keeps a frame ~30 KB at 640 x 480
TIMELINE_EVERY_S = 0.5
READOUT_EVERY_S = 0.25
CLASSIFY_EVERY_S = 0.1  # how old a face's emotion may get before the model sees the face again


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
    seen: float = 0.0  # when their last frame came (time.monotonic)
    charted: float | None = None  # the newest timeline entry already sent as a chart
    search: StreamSearch | None = None  # their faces, followed from frame to frame
    model: str | None = None  # the model their tracks' probabilities came from
    classified: int = 0  # model calls on their frames (the mirrored view every other call)


class Viewers:
    """Each webcam viewer's Viewer, by Gradio session, dropped when their tab closes (drop(),
    from Blocks.unload) or VIEWER_IDLE_S after their last frame, whichever comes first.

    Not a gr.State: Gradio keeps a closed session's State for an hour whatever the State's own
    time_to_live (SessionState.STATE_TTL_WHEN_CLOSED), and a viewer's timeline (where their
    face was and what it showed, frame by frame) is data about them. Idle viewers are found
    whenever any viewer's frame or timeline is asked for.
    """

    def __init__(self, idle_s: float = VIEWER_IDLE_S):
        self.idle_s = idle_s
        self._by_session: dict[str, Viewer] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._by_session)

    def get(self, session: str | None, now: float | None = None) -> Viewer:
        """This session's viewer, created on their first frame; a caller without a session
        (nothing to tie their frames together) gets a new one each time, kept nowhere."""
        now = time.monotonic() if now is None else now
        self.expire(now)
        if session is None:
            return Viewer(seen=now)
        with self._lock:
            viewer = self._by_session.setdefault(session, Viewer())
        viewer.seen = now
        return viewer

    def peek(self, session: str | None, now: float | None = None) -> Viewer | None:
        """This session's viewer if they have one, without creating or refreshing it."""
        self.expire(time.monotonic() if now is None else now)
        return self._by_session.get(session) if session is not None else None

    def drop(self, session: str | None, why: str = "tab closed") -> bool:
        with self._lock:
            gone = self._by_session.pop(session, None) if session is not None else None
        if gone is not None:
            log.info("webcam viewer gone (%s): their timeline is dropped; %d still live", why, len(self))
        return gone is not None

    def expire(self, now: float) -> None:
        with self._lock:
            idle = [s for s, v in self._by_session.items() if now - v.seen > self.idle_s]
        for session in idle:
            self.drop(session, f"no frame for {self.idle_s:g} s")


def process_frame(rgb: np.ndarray, model, detector: FaceDetector, viewer: Viewer,
                  now: float | None = None) -> tuple[np.ndarray, str | None]:
    """Detect, classify, track and draw one frame: (annotated frame, readout or None).

    Faces are found on every frame; each face's emotion is recomputed when it is
    CLASSIFY_EVERY_S old (a new face at once), as the browser's live mode recomputes it as
    often as its worker allows: the model is most of a frame's cost, and the tracker's moving
    average changes little from one frame to the next. The readout (frame rate and the mean
    cost of each stage) is written READOUT_EVERY_S at most: a text update per frame is work
    for the viewer's browser that nobody can read.
    """
    now = time.monotonic() if now is None else now
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if viewer.search is None or viewer.search.detector is not detector:
        viewer.search = StreamSearch(detector)
    with timed(timings, "detect"):
        boxes = [f.box for f in viewer.search.detect(rgb)]
    if viewer.model != model.name:
        viewer.tracker.forget_probs()
        viewer.model = model.name
    fresh = viewer.tracker.stale(boxes, now, CLASSIFY_EVERY_S)
    probs = np.zeros((len(boxes), len(model.class_names)), np.float32)
    if any(fresh):
        # Each model's "live_views" (NAME.json, plain by default), mirrored every other time:
        # extra views would multiply the model's work, and the tracker's moving average over
        # frames steadies the label and sees both views (bench/webcam.py).
        at = [i for i, f in enumerate(fresh) if f]
        probs[at] = classify_faces(rgb, [boxes[i] for i in at], model, timings=timings, view_set=model.live_views,
                                   mirrored=viewer.classified % 2 == 1)
        viewer.classified += 1
    probs, ids = viewer.tracker.update(boxes, probs, now, fresh=fresh)
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
    readout = (f"{model.name} · {total:.0f} ms per frame ({parts} ms; {describe(model.live_views)}, "
                   f"each face classified again at {CLASSIFY_EVERY_S * 1000:.0f} ms old, mirrored every other time)")
    if elapsed > 0:
        readout += f" · {n / elapsed:.0f} frames/s"
    readout += f" · {len(faces)} face{'s' if len(faces) != 1 else ''}"
    if faces:
        readout += " · " + "; ".join(f"{f['label']} {f['confidence']:.0%}" for f in faces)
    viewer.frames, viewer.ms, viewer.since = 0, {}, now
    return out, readout


def timeline_image(viewer: Viewer | None, class_names) -> np.ndarray | None:
    """The largest face's smoothed probabilities over the last ~30 s, as a small chart; None
    when there is nothing new to draw since the last one (a stopped stream, no face yet)."""
    if viewer is None:
        return None
    tracker = viewer.tracker
    seconds, probs, newest = tracker.timeline()
    if not len(seconds) or newest == viewer.charted:
        return None
    viewer.charted = newest
    return line_chart(seconds, probs, class_names, -tracker.history_s, 0.0,
                      tick_label=lambda t: f"{t:g}s" if t else "now")
