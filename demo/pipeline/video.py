"""Video files in, an annotated video and each face's emotions per frame out.

PyAV (FFmpeg inside its wheel, no system ffmpeg) decodes the clip and encodes H.264 MP4
with the original audio re-encoded to AAC, so the result plays in any browser. Each
frame goes through the same steps as an image (detect, classify, draw) and one Tracker
(demo.pipeline.tracking, shared with the webcam) gives each face a stable id and smooths its
probabilities. Like the webcam, a clip is a stream: faces are searched with StreamSearch
and classified under the model's live views, mirrored every other frame (the smoothing
averages both views; the served views of an upload would cost up to 12 model calls a face). Frames keep their timestamps, so a variable frame rate survives.

The limits are checked from the container's header before any frame is decoded
(`probe`), and again while decoding: a header may carry no length (a live WebM or MKV, as
browsers record them) or a wrong one, and a few MB of tiny still frames can hold hours of
timestamps. A clip that fails later is reported and its partial output removed.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from demo.pipeline.analyse import annotate, detect_and_classify, face_record
from demo.pipeline.charts import line_chart
from demo.pipeline.faces import FaceDetector, StreamSearch
from demo.pipeline.tracking import Tracker

MAX_VIDEO_BYTES = 200 * 2**20
MAX_SECONDS = 10 * 60
MAX_FPS = 240
MAX_FRAMES = MAX_SECONDS * MAX_FPS  # decoded, counted while decoding: the most a clip within the limits holds
MAX_SOURCE_PIXELS = 8192 * 8192  # beyond any camera; decoding one such frame alone takes ~200 MB
MAX_SIDE = 1280  # larger frames are analysed and written at this size (aspect kept)
VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v"}  # the CLI's and the sweeper's list too
SUPPORTED = "MP4, WebM, MOV or AVI"
# Missed detections bridged before a face's track ends: a blink of the detector keeps the id.
TRACK_MAX_MISSING = 5


class VideoError(ValueError):
    """A clip that cannot be analysed; the message is meant for the user."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int  # from the header: an estimate for some containers
    seconds: float
    codec: str
    has_audio: bool

    @property
    def output_size(self) -> tuple[int, int]:
        """(width, height) the frames are analysed and written at: at most MAX_SIDE, even numbers."""
        scale = min(1.0, MAX_SIDE / max(self.width, self.height))
        return (max(2, int(self.width * scale) // 2 * 2), max(2, int(self.height * scale) // 2 * 2))


def _looks_like_video(path: Path) -> bool:
    """The first bytes of an MP4/MOV (an ftyp or moov box), WebM/MKV (EBML) or AVI (RIFF) file."""
    with open(path, "rb") as f:
        head = f.read(12)
    return head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free") or head[:4] == b"\x1a\x45\xdf\xa3" \
        or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")


def _open(path: Path):
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.InvalidDataError:
        if _looks_like_video(path):
            raise VideoError("the video file is truncated or corrupt") from None
        raise VideoError(f"not a video file; upload {SUPPORTED}") from None
    except (av.error.FFmpegError, OSError) as err:
        raise VideoError(f"the video file is truncated or corrupt ({type(err).__name__})") from None


def probe(path: str | os.PathLike) -> VideoInfo:
    """The clip's size, rate, length and streams from its header, or VideoError."""
    path = Path(path)
    if not path.is_file():
        raise VideoError("file not found")
    size = path.stat().st_size
    if size == 0:
        raise VideoError("the file is empty (0 bytes)")
    if size > MAX_VIDEO_BYTES:
        raise VideoError(f"the video is {size / 2**20:.0f} MB; the limit is {MAX_VIDEO_BYTES // 2**20} MB")
    with _open(path) as container:
        if not container.streams.video:
            kind = "audio only" if container.streams.audio else "no video stream"
            raise VideoError(f"the file has no pictures ({kind}); upload a video")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise VideoError("the video stream has no frame size; the file is truncated or corrupt")
        _check_size(width, height)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if not 0 < fps <= MAX_FPS:
            raise VideoError(f"a frame rate of {fps:g} frames a second is not supported (1 to {MAX_FPS})")
        lengths = {s: float(s.duration * s.time_base) for s in container.streams
                   if s.duration is not None and s.time_base}
        if container.duration is not None:
            lengths[container] = container.duration / 1_000_000
        # The pictures' length is what the chart spans; the longest stream (a sound track may run
        # on for hours after the last frame, and is re-encoded too) is what the limit is about.
        seconds = lengths.get(stream, lengths.get(container, 0.0))
        longest = max(lengths.values(), default=0.0)
        if longest > MAX_SECONDS:
            raise VideoError(f"the video is {longest / 60:.1f} minutes long; the limit is {MAX_SECONDS // 60} minutes")
        frames = stream.frames or int(round(seconds * fps))
        return VideoInfo(width, height, fps, frames, seconds, stream.codec_context.name,
                         bool(container.streams.audio))


@dataclass
class FaceRow:
    """One face in one frame: a row of the CSV, an object of the JSON."""
    frame: int
    time: float
    face_id: int
    x: int
    y: int
    w: int
    h: int
    label: str
    confidence: float
    probs: dict[str, float]


def analyse_video(path, out_path, model, detector: FaceDetector, view_set: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> tuple[VideoInfo, list[FaceRow], int]:
    """Write the annotated clip to out_path (MP4); returns (info, one row per face per frame, frames written).

    Faces are tracked across frames (stable ids, smoothed probabilities). view_set None:
    the model's live views, as on the webcam. On any failure
    the partial output is deleted and VideoError says why.
    """
    import av

    info = probe(path)
    out_path = Path(out_path)
    width, height = info.output_size
    rows: list[FaceRow] = []
    tracker = Tracker(max_missing=TRACK_MAX_MISSING)
    search = StreamSearch(detector)
    view_set = model.live_views if view_set is None else view_set
    written = 0
    try:
        with _open(Path(path)) as source, av.open(str(out_path), "w", format="mp4",
                                                   options={"movflags": "+faststart"}) as sink:
            vin = source.streams.video[0]
            vin.thread_type = "AUTO"  # frame-threaded decoding
            ain = source.streams.audio[0] if source.streams.audio else None
            vout = sink.add_stream("libx264", rate=Fraction(info.fps).limit_denominator(1001))
            vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
            # Keep every frame's own timestamp (variable frame rates): encode in the source's time
            # base, so no timestamp is rounded onto its neighbour's.
            vout.time_base = vout.codec_context.time_base = vin.time_base
            vout.options = {"preset": "veryfast", "crf": "23"}
            aout = sink.add_stream("aac", rate=ain.codec_context.sample_rate or 48000) if ain else None
            last_pts = None
            with _Writer(sink) as writer:
                for stream, frame in _decoded(source, vin, ain):
                    if stream is ain:
                        frame.pts = None  # the encoder numbers audio samples itself
                        writer.submit(_encode_audio, aout, frame)
                        continue
                    if frame.pts is None or (last_pts is not None and frame.pts <= last_pts):
                        continue  # a frame without a usable timestamp cannot be placed in the output
                    last_pts = frame.pts
                    rgb = frame.to_ndarray(format="rgb24", width=width, height=height)
                    t = float(frame.pts * vin.time_base)
                    boxes, probs = detect_and_classify(rgb, model, search, view_set=view_set,
                                                       mirrored=written % 2 == 1)
                    probs, ids = tracker.update(boxes, probs, t)
                    faces = [face_record(box, p, model.class_names) for box, p in zip(boxes, probs)]
                    for face, face_id, p in zip(faces, ids, probs):
                        rows.append(FaceRow(written, round(t, 4), face_id, *face["box"], face["label"],
                                            face["confidence"],
                                            {c: round(float(v), 4) for c, v in zip(model.class_names, p)}))
                        face["id"] = face_id  # drawn as "#2 happy 93%"
                    writer.submit(_encode_video, vout, rgb, faces, frame.pts, vin.time_base)
                    written += 1
                    if progress:
                        progress(written, info.frames)
                for stream in (vout, aout):
                    if stream is not None:
                        writer.submit(_flush, stream)
        if written == 0:
            raise VideoError("the video has no frames that could be decoded")
    except VideoError:
        out_path.unlink(missing_ok=True)
        raise
    except (av.error.FFmpegError, OSError, ValueError) as err:
        out_path.unlink(missing_ok=True)
        raise VideoError(f"the video file is truncated or corrupt ({type(err).__name__}: {err})") from None
    except BaseException:
        out_path.unlink(missing_ok=True)
        raise
    return info, rows, written


class _Writer:
    """Draws, encodes and muxes in one thread beside the analysis, in submission order.

    Analysis (detection, the model) and output (drawing, x264, AAC) each leave part of two
    cores idle; overlapped, a clip goes faster (bench/results/video.md). At most MAX_PENDING
    frames wait, so memory stays bounded; the first failure is raised in the caller.
    """

    MAX_PENDING = 8

    def __init__(self, sink):
        from concurrent.futures import ThreadPoolExecutor

        self.sink, self.pending = sink, []
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="video-writer")

    def submit(self, fn, *args):
        self.pending.append(self.pool.submit(lambda: [self.sink.mux(p) for p in fn(*args)]))
        while len(self.pending) > self.MAX_PENDING or (self.pending and self.pending[0].done()):
            self.pending.pop(0).result()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            for future in self.pending:
                if exc_type is None:
                    future.result()
                else:
                    future.cancel()
        finally:
            self.pool.shutdown(wait=True)
        return False


def _encode_video(vout, rgb: np.ndarray, faces: list[dict], pts: int, time_base) -> list:
    import av

    out = av.VideoFrame.from_ndarray(annotate(rgb, faces), format="rgb24")
    out.pts, out.time_base = pts, time_base
    return vout.encode(out)


def _encode_audio(aout, frame) -> list:
    return aout.encode(frame)


def _flush(stream) -> list:
    return stream.encode(None)


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_SOURCE_PIXELS:
        raise VideoError(f"frames of {width} x {height} pixels are too large; the limit is 8192 x 8192")


def _decoded(source, vin, ain):
    """(stream, frame) in file order, kept within the limits whatever the header said.

    The frame size may change mid-stream (a new H.264 parameter set), so FFmpeg itself refuses
    frames over MAX_SOURCE_PIXELS (max_pixels) before allocating them: one 12000 x 12000 frame
    alone takes 200 MB, and a 400 KB file can hold a dozen.
    """
    import av

    vin.codec_context.options = {"max_pixels": str(MAX_SOURCE_PIXELS)}
    decoded = 0
    starts: dict = {}  # each stream's first timestamp, in seconds
    try:
        for packet in source.demux(*[s for s in (vin, ain) if s is not None]):
            for frame in packet.decode():
                _check_limits(frame, packet.stream, starts)
                if packet.stream is vin:
                    decoded += 1
                    if decoded > MAX_FRAMES:
                        raise VideoError(f"the video has more than {MAX_FRAMES} frames; the limit is "
                                         f"{MAX_SECONDS // 60} minutes at {MAX_FPS} frames a second")
                yield packet.stream, frame
    except av.error.InvalidDataError:
        _check_size(vin.codec_context.width, vin.codec_context.height)  # what max_pixels refused
        raise


def _check_limits(frame, stream, starts: dict) -> None:
    """VideoError once a stream runs more than MAX_SECONDS past its first frame, whatever its header said."""
    time_base = frame.time_base or stream.time_base
    if frame.pts is None or not time_base:
        return
    t = float(frame.pts * time_base)
    if t - starts.setdefault(stream.index, t) > MAX_SECONDS:
        raise VideoError(f"the video runs past {MAX_SECONDS // 60} minutes; the limit is {MAX_SECONDS // 60} minutes")


def faces_chart(rows: list[FaceRow], class_names, seconds: float, most: int = 4) -> np.ndarray | None:
    """Each tracked face's smoothed probabilities over the clip (the `most` longest-seen faces), stacked."""
    by_id: dict[int, list[FaceRow]] = {}
    for r in rows:
        by_id.setdefault(r.face_id, []).append(r)
    if not by_id:
        return None
    shown = sorted(by_id, key=lambda i: -len(by_id[i]))[:most]
    panels = []
    for face_id in sorted(shown):
        face_rows = by_id[face_id]
        times = np.array([r.time for r in face_rows])
        probs = np.array([[r.probs[c] for c in class_names] for r in face_rows])
        panels.append(line_chart(times, probs, class_names, 0.0, max(seconds, times[-1], 1e-3), size=(640, 220),
                                 title=f"face #{face_id}: {len(face_rows)} frames"))
    return np.concatenate(panels)


CSV_FIELDS = ["frame", "time", "face_id", "x", "y", "w", "h", "label", "confidence"]


def write_csv(rows: list[FaceRow], path, class_names) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS + list(class_names))
        for r in rows:
            writer.writerow([getattr(r, k) for k in CSV_FIELDS] + [r.probs[c] for c in class_names])


def write_json(rows: list[FaceRow], path, info: VideoInfo, frames: int) -> None:
    with open(path, "w") as f:
        json.dump({"video": {**asdict(info), "frames_written": frames}, "faces": [asdict(r) for r in rows]}, f)
