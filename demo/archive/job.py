"""An archive job on Ray: its units, a long video's phases, the manifest, the records in the files' order.

Images go in runs of --batch; a video of more than RANGE_FRAMES frames is cut into ranges
(demo.archive.video_ranges) whose analyses run on any worker, then, once all are done, their
renders, then the join; shorter videos are one unit each. What the manifest lists as done is
never run again: a rerun after a crash or a lost node starts each long video at the phase it
had reached.
"""

from __future__ import annotations

from pathlib import Path

from demo.archive.manifest import Manifest
from demo.archive.units import Unit, plan

RANGE_FRAMES = 900  # 30 s at 30 fps: a worker's share of a long clip (the CLI's --range-frames)


class LongVideo:
    """The range, render and join units of one clip, each released when the phase before is done."""

    def __init__(self, path: str, frames: int, size: int, out: str, csv: str | None):
        from demo.archive.video_ranges import ranges

        self.path, self.frames, self.out, self.csv = path, frames, out, csv
        self.spans = ranges(frames, size)
        self.segments = [str(Path(out).with_name(f".{Path(out).stem}.part{a}-{b}.mp4")) for a, b in self.spans]

    def key(self, phase: str, span=None) -> str:
        return f"{phase}:{self.path}" + (f"#{span[0]}-{span[1]}" if span else "")

    def ready(self, done: dict) -> list[Unit]:
        """The units of the first unfinished phase that are not done yet."""
        from demo.archive.video_ranges import stitch

        if self.key("join") in done:
            return []
        analysed = [done.get(self.key("range", s)) for s in self.spans]
        if not all(analysed):
            return [Unit(self.key("range", s), "range", (self.path,), {"range": list(s)})
                    for s, entry in zip(self.spans, analysed) if not entry]
        rows = stitch([entry["records"][0] for entry in analysed])
        rendered = [self.key("render", s) in done for s in self.spans]
        if not all(rendered):
            return [Unit(self.key("render", s), "render", (self.path,),
                         {"range": list(s), "segment": seg, "rows": [r for r in rows if s[0] <= r["frame"] < s[1]]})
                    for s, seg, ok in zip(self.spans, self.segments, rendered) if not ok]
        return [Unit(self.key("join"), "join", (self.path,), {"segments": self.segments, "rows": rows,
                                                              "frames": self.frames, "out": self.out, "csv": self.csv})]


def build(files: list[Path], batch: int, targets: dict[str, tuple[str, str | None]], range_frames: int):
    """(units, long videos by path): whole-video units carry their targets; long ones become LongVideo."""
    from demo.archive.video_ranges import frame_times
    from demo.pipeline.video import VideoError

    units, long = [], {}
    for unit in plan(files, batch):
        if unit.kind == "video":
            path = unit.paths[0]
            out, csv = targets[path]
            try:
                frames = len(frame_times(Path(path)))
            except VideoError:
                frames = 0  # the worker reports why
            if frames > range_frames:
                long[path] = LongVideo(path, frames, range_frames, out, csv)
                continue
            unit.args = {"out": out, "csv": csv}
        units.append(unit)
    return units, long


def run_job(files: list[Path], batch: int, targets: dict, range_frames: int, settings: dict, out: Path,
            address: str | None, workers: int | None, progress) -> list[dict]:
    """Every file's record, in the files' order; units already done in OUT/manifest.jsonl are not run again.

    progress(files_finished, faces) is called as units end.
    """
    from demo.archive.ray_engine import run

    units, long = build(files, batch, targets, range_frames)
    with Manifest(out) as manifest:
        todo = [u for u in units if u.key not in manifest.done]
        for video in long.values():
            todo += video.ready(manifest.done)
        scheduled = {u.key for u in todo}  # each unit runs once per run, whoever finds it ready

        def fresh(units: list[Unit]) -> list[Unit]:
            new = [u for u in units if u.key not in scheduled]
            scheduled.update(u.key for u in new)
            return new

        finished = sum(len(u.paths) for u in units if u.key in manifest.done) + \
            sum(1 for v in long.values() if v.key("join") in manifest.done)
        progress(finished, 0)

        def on_done(unit: Unit, status: str, result) -> list[Unit]:
            if status == "failed":
                manifest.record(unit.key, "failed", reason=result, files=list(unit.paths))
                progress(len(unit.paths) if unit.kind in ("images", "video", "join") else 0, 0)
                return []
            manifest.record(unit.key, "done", records=result)
            if unit.kind in ("range", "render"):
                return fresh(long[unit.paths[0]].ready(manifest.done))
            faces = sum(len(r.get("faces", ())) + r.get("rows", 0) for r in result)
            progress(len(unit.paths), faces)
            return []

        if todo:
            run(todo, settings, address, workers, on_done)
        records = []
        for unit in plan(files, batch):
            key = long[unit.paths[0]].key("join") if unit.paths[0] in long else unit.key
            entry = manifest.done.get(key)
            records += entry["records"] if entry else [{"file": p, "error": "not done: see OUT/manifest.jsonl"}
                                                       for p in unit.paths]
    return records
