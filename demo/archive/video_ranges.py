"""One long video on many workers: frame ranges analysed apart, their face ids stitched, drawn and joined.

1. `frame_times` lists every frame's timestamp from the packets (no decoding), so ranges are
   exact frame numbers even at a variable frame rate.
2. `analyse_range` (one task per range) seeks to WARMUP_FRAMES before its range and runs the
   same per-frame steps as demo.pipeline.video.analyse_video over them: the tracker's moving
   average, the detector's full-search schedule and the mirror parity follow the global frame
   number, so from the range's first frame on, its rows are what one process would have written.
   The warm-up frames cost about a second of video per cut and are not written.
3. `stitch` (the driver, no pixels): the warm-up's last frame is the previous range's last
   frame, so its tracks are matched to that range's by box overlap and keep their ids; a face
   that appears in a range gets the next free id.
4. `render_range` (one task per range) draws the stitched rows on the range's frames and encodes
   them; `join` (one task per clip) copies the ranges' packets into one MP4, in order, with the
   source's sound encoded once, and writes the CSV. Every file is written under a temporary
   name and renamed when whole.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path

from demo.pipeline.video import TRACK_MAX_MISSING, FaceRow, VideoError, _open, probe, write_csv

WARMUP_FRAMES = 30  # the moving average (weight 0.4 per frame) forgets a frame after ~30 (0.6**30 ~ 2e-7)


def frame_times(path: Path) -> list[int]:
    """Every video frame's pts in presentation order, from the packets alone."""
    with _open(path) as source:
        vin = source.streams.video[0]
        pts = sorted({p.pts for p in source.demux(vin) if p.pts is not None})
    return pts


def ranges(frames: int, size: int) -> list[tuple[int, int]]:
    return [(a, min(a + size, frames)) for a in range(0, frames, size)]


def _frames_from(path: Path, pts: list[int], first: int, end: int, width: int, height: int):
    """(global frame number, time in seconds, RGB) for frames first..end-1, after seeking before `first`."""
    index = {p: i for i, p in enumerate(pts[first:end], start=first)}
    with _open(path) as source:
        vin = source.streams.video[0]
        vin.thread_type = "AUTO"
        source.seek(pts[first], stream=vin, backward=True, any_frame=False)
        last = first - 1
        for frame in source.decode(vin):
            i = index.get(frame.pts)
            if i is None or i <= last:
                continue  # before the range (decoded from the keyframe), or a repeated timestamp
            last = i
            yield i, float(frame.pts * vin.time_base), frame.to_ndarray(format="rgb24", width=width, height=height)
            if i == end - 1:
                return


def analyse_range(path: Path, pts: list[int], a: int, b: int, model, detector) -> dict:
    """The rows of frames a..b-1 with this range's own track ids, and the tracks at the frame before a and at b-1."""
    from demo.pipeline.analyse import detect_and_classify, face_record
    from demo.pipeline.faces import StreamSearch
    from demo.pipeline.tracking import Tracker

    width, height = probe(path).output_size
    tracker, search = Tracker(max_missing=TRACK_MAX_MISSING), StreamSearch(detector)
    first = max(0, a - WARMUP_FRAMES)
    search.frames = first  # the full-search schedule of the whole clip
    rows, before, last, seen = [], [], [], 0
    for i, t, rgb in _frames_from(path, pts, first, b, width, height):
        boxes, probs = detect_and_classify(rgb, model, search, view_set=model.live_views, mirrored=i % 2 == 1)
        probs, ids = tracker.update(boxes, probs, t)
        seen += i >= a
        if i == a - 1:
            before = [[face_id, list(map(int, box))] for face_id, box in zip(ids, boxes)]
        if i >= a:
            for box, face_id, p in zip(boxes, ids, probs):
                face = face_record(box, p, model.class_names)
                rows.append(asdict(FaceRow(i, round(t, 4), face_id, *face["box"], face["label"], face["confidence"],
                                           {c: round(float(v), 4) for c, v in zip(model.class_names, p)})))
        if i == b - 1:
            last = [[face_id, list(map(int, box))] for face_id, box in zip(ids, boxes)]
    if seen != b - a:
        raise VideoError(f"frames {a} to {b - 1} could not all be decoded ({seen} of {b - a})")
    return {"range": [a, b], "rows": rows, "before": before, "last": last}


def stitch(parts: list[dict]) -> list[dict]:
    """Every range's rows with clip-wide face ids (parts in frame order).

    A face that the tracker bridged over a cut (missed in the last frame of a range, found again
    after it) gets a new id, where one process would have kept it.
    """
    from demo.pipeline.tracking import MIN_IOU, iou

    out, next_id, previous_last = [], 1, []
    for part in parts:
        mapping, taken = {}, set()
        pairs = sorted(((iou(pb, bb), pid, bid) for pid, pb in previous_last for bid, bb in part["before"]),
                       reverse=True)
        for overlap, pid, bid in pairs:  # best overlaps first, each track once
            if overlap < MIN_IOU:
                break
            if pid not in taken and bid not in mapping:
                mapping[bid], taken = pid, taken | {pid}
        for row in part["rows"]:
            if row["face_id"] not in mapping:
                mapping[row["face_id"]] = next_id
                next_id += 1
            out.append({**row, "face_id": mapping[row["face_id"]]})
        previous_last = [(mapping[fid], box) for fid, box in part["last"] if fid in mapping]
    return out


def render_range(path: Path, pts: list[int], a: int, b: int, rows: list[dict], out: Path) -> None:
    """Frames a..b-1 with their faces drawn, encoded as H.264 in the source's time base, to `out`."""
    import av

    from demo.pipeline.overlay import draw_faces

    info = probe(path)
    width, height = info.output_size
    by_frame: dict[int, list[dict]] = {}
    for r in rows:
        by_frame.setdefault(r["frame"], []).append(
            {"box": [r["x"], r["y"], r["w"], r["h"]], "label": r["label"], "confidence": r["confidence"],
             "id": r["face_id"]})
    partial = out.with_name(f".{out.name}.partial{out.suffix}")
    with _open(path) as source:
        time_base = source.streams.video[0].time_base
    with av.open(str(partial), "w", format="mp4") as sink:
        vout = sink.add_stream("libx264", rate=Fraction(info.fps).limit_denominator(1001))
        vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
        vout.time_base = vout.codec_context.time_base = time_base
        vout.options = {"preset": "veryfast", "crf": "23"}
        for i, _, rgb in _frames_from(path, pts, a, b, width, height):
            frame = av.VideoFrame.from_ndarray(draw_faces(rgb, by_frame.get(i, [])), format="rgb24")
            frame.pts, frame.time_base = pts[i], time_base
            for packet in vout.encode(frame):
                sink.mux(packet)
        for packet in vout.encode(None):
            sink.mux(packet)
    os.replace(partial, out)


def join(path: Path, segments: list[Path], rows: list[dict], frames: int, out: Path, csv_path: Path | None,
         class_names) -> dict:
    """The ranges' packets in order and the source's sound, as one MP4; the CSV; the summary record."""
    import av

    info = probe(path)
    partial = out.with_name(f".{out.name}.partial{out.suffix}")
    with av.open(str(partial), "w", format="mp4", options={"movflags": "+faststart"}) as sink:
        with av.open(str(segments[0])) as first:
            vout = sink.add_stream_from_template(first.streams.video[0])
        with _open(path) as source:
            ain = source.streams.audio[0] if source.streams.audio else None
            aout = sink.add_stream("aac", rate=ain.codec_context.sample_rate or 48000) if ain else None
            for segment in segments:
                with av.open(str(segment)) as part:
                    for packet in part.demux(part.streams.video[0]):
                        if packet.dts is None:
                            continue  # the demuxer's flush packet
                        packet.stream = vout
                        sink.mux(packet)
            if ain is not None:
                for frame in source.decode(ain):
                    frame.pts = None
                    for packet in aout.encode(frame):
                        sink.mux(packet)
                for packet in aout.encode(None):
                    sink.mux(packet)
    face_rows = [FaceRow(**r) for r in rows]
    if csv_path:
        partial_csv = csv_path.with_name(f".{csv_path.name}.partial")
        write_csv(face_rows, partial_csv, class_names)
        os.replace(partial_csv, csv_path)
    os.replace(partial, out)
    for segment in segments:
        segment.unlink(missing_ok=True)
    return {"file": str(path), "frames": frames, "seconds": round(info.seconds, 3),
            "face_ids": sorted({r.face_id for r in face_rows}), "rows": len(face_rows), "out": str(out),
            "csv": str(csv_path) if csv_path else None}
