"""Emotions of the faces in image and video files and folders, from the command line.

    python -m demo.predict examples/astronaut.jpg photos/ [--model cnn] [--json]
    python -m demo.predict clip.mp4 --out annotated.mp4 --csv faces.csv
    python -m demo.predict videos/ --out annotated/ --csv tables/

Images: one line per face, or with --json one object per file:
{"file": ..., "faces": [{"box": [x, y, w, h], "label", "confidence", "top3"}]}
or {"file": ..., "error": ...} for a file that is not a usable image.
Videos (MP4, WebM, MOV, AVI): an annotated MP4 (--out: a file, or a folder for several
clips; default NAME.annotated.mp4 here) and optionally a CSV of every face in every frame
(--csv: a file or a folder), with a progress bar on stderr; one summary line (or JSON object).
Exit 1 if a file could not be used, 2 if nothing could be read at all: a missing path, no
images or videos, a missing model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from demo.archive.job import RANGE_FRAMES
from demo.pipeline.video import VIDEO_SUFFIXES  # PyAV itself loads only when a clip is read

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BATCH_FILES = 64  # images per model call: bench/results/batch.md
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def iter_files(paths):
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*")
                              if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
        else:
            yield p


def target(option: Path | None, video: Path, several: bool, suffix: str) -> Path | None:
    """Where a video's output goes: the given file, NAME+suffix in the given folder, or None."""
    if option is None:
        return None
    if several or option.is_dir():
        option.mkdir(parents=True, exist_ok=True)
        return option / f"{video.stem}{suffix}"
    option.parent.mkdir(parents=True, exist_ok=True)
    return option


def print_record(record: dict, as_json: bool, write) -> None:
    """One file's result as a JSON line, or as text lines (one per face; one summary per video)."""
    path = record["file"]
    if as_json:
        write(json.dumps(record))
    elif "error" in record:
        write(f"{path}: error: {record['error']}")
    elif "frames" in record:
        ids = record["face_ids"]
        write(f"{path}: {record['frames']} frames, {len(ids)} face{'s' if len(ids) != 1 else ''} tracked, "
              f"{record['rows']} face rows -> {record['out']}" + (f", {record['csv']}" if record["csv"] else ""))
    elif not record["faces"]:
        write(f"{path}: no face found")
    else:
        for f in record["faces"]:
            top3 = ", ".join(f"{label} {v:.0%}" for label, v in f["top3"])
            write(f"{path}: box {f['box']} {f['label']} {f['confidence']:.0%} (top 3: {top3})")


def main(argv=None) -> int:
    from tqdm import tqdm

    from demo.archive.units import image_records, plan, video_record
    from demo.pipeline.classify import ModelStore, ModelUnavailable
    from demo.pipeline.faces import DEFAULT_DETECTOR, DETECTOR_KINDS, FaceDetector

    p = argparse.ArgumentParser(prog="python -m demo.predict", description=__doc__.split("\n")[0])
    p.add_argument("paths", nargs="+", help="image or video files, or folders of them")
    p.add_argument("--model", help="model name in weights/ (default: the first shipped one), or 'ensemble'")
    p.add_argument("--weights", type=Path, help="folder of models (default: weights/)")
    p.add_argument("--runtime", choices=["keras", "onnx", "litert"], default="keras",
                   help="run NAME.keras with Keras, or NAME.onnx / NAME.tflite (python -m trainer.export) "
                        "with ONNX Runtime / LiteRT")
    p.add_argument("--detector", choices=DETECTOR_KINDS, default=DEFAULT_DETECTOR,
                   help="auto (default): faces from 40 px in any photo, searched in tiles; "
                        "full / short: one pass of BlazeFace's full- or short-range model, faster")
    p.add_argument("--whole-image", action="store_true", help="treat each image as one face crop")
    p.add_argument("--json", action="store_true", help="JSON lines instead of text")
    p.add_argument("--out", type=Path, help="videos: the annotated MP4, or a folder for several videos")
    p.add_argument("--csv", type=Path, help="videos: every face in every frame as CSV (a file, or a folder)")
    p.add_argument("--batch", type=int, default=BATCH_FILES, metavar="N",
                   help=f"images whose faces share one model call (default {BATCH_FILES}; 1: one call per image)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local (default): this process; ray: Ray tasks, with a manifest in --out that makes a "
                        "rerun do only what is missing (pip install -r requirements-cluster.txt)")
    p.add_argument("--address", help="ray: an existing cluster (auto, or ray://HOST:10001); default: Ray "
                                     "started embedded on this machine")
    p.add_argument("--workers", type=int, help="ray: at most this many units at once (default: every CPU)")
    p.add_argument("--range-frames", type=int, default=RANGE_FRAMES, metavar="N",
                   help=f"ray: a longer video is cut into ranges of N frames, each on its own worker (default {RANGE_FRAMES})")
    args = p.parse_args(argv)
    if args.batch < 1:
        p.error("--batch must be at least 1")
    if args.engine == "ray" and args.out is None:
        p.error("--engine ray needs --out FOLDER: the results, the annotated videos and the manifest go there")
    if args.engine == "local" and (args.address or args.workers):
        p.error("--address and --workers are for --engine ray")
    if args.range_frames < 2:
        p.error("--range-frames must be at least 2")

    # Every path is checked before TensorFlow loads (seconds), so a typo fails at once.
    missing = [str(path) for path in args.paths if not Path(path).exists()]
    if missing:
        print(f"error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    files = list(iter_files(args.paths))
    if not files:
        suffixes = " ".join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))
        print(f"error: no image or video files ({suffixes}) in {', '.join(args.paths)}", file=sys.stderr)
        return 2
    videos = [f for f in files if f.suffix.lower() in VIDEO_SUFFIXES]

    if args.engine == "ray":
        return run_on_ray(files, args)
    store = ModelStore(args.weights, runtime=args.runtime)
    try:
        model = store.get(args.model or store.default())
    except ModelUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    failures = 0
    with FaceDetector(args.detector) as detector, \
            tqdm(total=len(files), unit="file", desc="files", disable=len(files) < 2, dynamic_ncols=True) as bar:
        for unit in plan(files, args.batch):
            if unit.kind == "images":
                records = image_records(list(unit.paths), model, detector, args.whole_image)
            else:
                path = Path(unit.paths[0])
                out, csv_path = targets(args, path, len(videos) > 1)
                with frames_bar(path.name, bar) as progress:
                    records = [video_record(path, out, csv_path, model, detector, progress)]
            for record in records:
                failures += "error" in record
                print_record(record, args.json, bar.write)
            bar.update(len(unit.paths))
    return 1 if failures else 0


def targets(args, video: Path, several: bool) -> tuple[Path, Path | None]:
    """The annotated MP4 and the CSV (or None) of one clip, as --out and --csv say."""
    out = target(args.out, video, several, ".annotated.mp4") or Path(f"{video.stem}.annotated.mp4")
    return out, target(args.csv, video, several, ".csv")


@contextmanager
def frames_bar(name: str, files_bar):
    """A tqdm bar of one clip's frames (a count, when the header gives no length), under the files' bar."""
    from tqdm import tqdm

    with tqdm(desc=name, unit="frame", position=1 if files_bar.total > 1 else 0, dynamic_ncols=True) as bar:
        def progress(done: int, total: int):
            if total > 0 and bar.total != max(total, done):
                bar.total = max(total, done)
            bar.update(done - bar.n)

        yield progress


def run_on_ray(files: list[Path], args) -> int:
    """The job as Ray tasks; the manifest in --out skips what an earlier run finished."""
    from tqdm import tqdm

    from demo.archive.job import run_job
    from demo.archive.ray_engine import RayUnavailable
    from demo.pipeline.classify import ModelStore

    store = ModelStore(args.weights, runtime=args.runtime)
    model = args.model or store.default()
    if model not in store.names():  # refused here, before a cluster starts; the workers load it
        print(f"error: model {model!r} is not available (choose one of: {', '.join(store.names()) or 'none'})",
              file=sys.stderr)
        return 2
    settings = {"weights": str(store.folder), "model": model, "runtime": args.runtime, "detector": args.detector,
                "whole_image": args.whole_image}
    videos = [f for f in files if f.suffix.lower() in VIDEO_SUFFIXES]
    video_targets = {str(v): tuple(str(p) if p else None for p in targets(args, v, several=True)) for v in videos}
    with tqdm(total=len(files), unit="file", desc="files", dynamic_ncols=True) as bar:
        faces = 0

        def progress(finished: int, found: int):
            nonlocal faces
            faces += found
            bar.set_postfix(faces=faces, refresh=False)
            bar.update(finished)

        try:
            records = run_job(files, args.batch, video_targets, args.range_frames, settings, args.out,
                              args.address, args.workers, progress)
        except RayUnavailable as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    lines = []
    for record in records:
        print_record(record, args.json, lines.append)
    results = args.out / ("results.jsonl" if args.json else "results.txt")
    partial = results.with_name(f".{results.name}.partial")
    partial.write_text("".join(line + "\n" for line in lines))
    partial.replace(results)
    for line in lines:
        print(line)
    return 1 if any("error" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
