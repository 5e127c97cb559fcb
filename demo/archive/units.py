"""The work of an archive job, cut into units that any process (or Ray worker) can run alone.

A unit is a run of up to --batch consecutive images (their faces share one model call) or one
video. Running a unit needs only the model, the detector and the paths, so the single process
and every Ray worker do exactly the same thing and write the same results. Outputs appear
whole or not at all: a video is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from demo.pipeline.video import VIDEO_SUFFIXES


@dataclass
class Unit:
    key: str  # stable across runs: the manifest's name for it
    kind: str  # "images", "video", or a long video's "range", "render" and "join" (demo.archive.video_ranges)
    paths: tuple[str, ...]
    args: dict = field(default_factory=dict)  # what the kind needs besides the paths: targets, a range, rows


def plan(files: list[Path], batch: int) -> list[Unit]:
    """Runs of at most `batch` consecutive images, and each video alone, in the files' order."""
    units, run = [], []

    def flush():
        if run:
            units.append(Unit(f"images:{run[0]}..{run[-1]}:{len(run)}", "images", tuple(run)))
            run.clear()

    for path in map(str, files):
        if Path(path).suffix.lower() in VIDEO_SUFFIXES:
            flush()
            units.append(Unit(f"video:{path}", "video", (path,)))
        else:
            run.append(path)
            if len(run) == batch:
                flush()
    flush()
    return units


def image_records(paths, model, detector, whole_image: bool) -> list[dict]:
    """{"file", "faces"} or {"file", "error"} per path, in order; one model call for all their faces."""
    from demo.pipeline.analyse import analyse_batch
    from demo.pipeline.images import ImageError, load_rgb

    records, images = {}, []
    for path in paths:
        try:
            images.append((path, load_rgb(path)))
        except ImageError as err:
            records[path] = {"file": str(path), "error": str(err)}
    for (path, _), faces in zip(images, analyse_batch([rgb for _, rgb in images], model, detector, whole_image)):
        records[path] = {"file": str(path), "faces": faces}
    return [records[p] for p in paths]


def video_record(path: Path, out: Path, csv_path: Path | None, model, detector, progress=None) -> dict:
    """Annotate one clip to `out` (and its faces to `csv_path`); the summary record, or {"file", "error"}.

    Both files are written under a temporary name beside their target and renamed once whole,
    so an interrupted run never leaves a half file where a whole one is expected.
    """
    from demo.pipeline.video import VideoError, analyse_video, write_csv

    partial_out = out.with_name(f".{out.name}.partial{out.suffix}")
    try:
        info, rows, frames = analyse_video(path, partial_out, model, detector, progress=progress)
    except VideoError as err:
        return {"file": str(path), "error": str(err)}
    if csv_path:
        partial_csv = csv_path.with_name(f".{csv_path.name}.partial")
        write_csv(rows, partial_csv, model.class_names)
        os.replace(partial_csv, csv_path)
    os.replace(partial_out, out)
    return {"file": str(path), "frames": frames, "seconds": round(info.seconds, 3),
            "face_ids": sorted({r.face_id for r in rows}), "rows": len(rows), "out": str(out),
            "csv": str(csv_path) if csv_path else None}
