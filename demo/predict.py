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
from pathlib import Path

from demo.pipeline.video import VIDEO_SUFFIXES  # PyAV itself loads only when a clip is read

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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


class ProgressBar:
    """One line on stderr, redrawn in place: name [#####.....] frames."""

    def __init__(self, name: str, width: int = 30):
        self.name, self.width, self.shown = name, width, -1

    def __call__(self, done: int, total: int):
        if total <= 0:  # the header gives no frame count (a browser recording): count, no bar
            if done % 30 == 1:
                print(f"\r{self.name} {done} frames (length unknown)", end="", file=sys.stderr, flush=True)
            return
        total = max(total, done)
        filled = self.width * done // total
        if filled != self.shown or done == total:
            self.shown = filled
            bar = "#" * filled + "." * (self.width - filled)
            print(f"\r{self.name} [{bar}] {done}/{total} frames", end="", file=sys.stderr, flush=True)

    def close(self):
        print(file=sys.stderr, flush=True)


def main(argv=None) -> int:
    from demo.pipeline.analyse import analyse
    from demo.pipeline.classify import ModelStore, ModelUnavailable
    from demo.pipeline.faces import DEFAULT_DETECTOR, DETECTOR_KINDS, FaceDetector
    from demo.pipeline.images import ImageError, load_rgb

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
    args = p.parse_args(argv)

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

    store = ModelStore(args.weights, runtime=args.runtime)
    try:
        model = store.get(args.model or store.default())
    except ModelUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    failures = 0
    with FaceDetector(args.detector) as detector:
        for path in files:
            if path in videos:
                failures += not predict_video(path, model, detector, args, several=len(videos) > 1)
                continue
            try:
                faces = analyse(load_rgb(path), model, detector, args.whole_image)
                record = {"file": str(path), "faces": faces}
            except ImageError as err:
                failures += 1
                record = {"file": str(path), "error": str(err)}
            if args.json:
                print(json.dumps(record))
            elif "error" in record:
                print(f"{path}: error: {record['error']}")
            elif not faces:
                print(f"{path}: no face found")
            else:
                for f in faces:
                    top3 = ", ".join(f"{label} {v:.0%}" for label, v in f["top3"])
                    print(f"{path}: box {f['box']} {f['label']} {f['confidence']:.0%} (top 3: {top3})")
    return 1 if failures else 0


def predict_video(path: Path, model, detector, args, several: bool) -> bool:
    """Annotate one clip as the options say; prints its summary line. True when it worked."""
    from demo.pipeline.video import VideoError, analyse_video, write_csv

    out = target(args.out, path, several, ".annotated.mp4") or Path(f"{path.stem}.annotated.mp4")
    csv_path = target(args.csv, path, several, ".csv")
    bar = ProgressBar(path.name)
    try:
        info, rows, frames = analyse_video(path, out, model, detector, progress=bar)
    except VideoError as err:
        record = {"file": str(path), "error": str(err)}
    else:
        if csv_path:
            write_csv(rows, csv_path, model.class_names)
        ids = sorted({r.face_id for r in rows})
        record = {"file": str(path), "frames": frames, "seconds": round(info.seconds, 3), "face_ids": ids,
                  "rows": len(rows), "out": str(out), "csv": str(csv_path) if csv_path else None}
    finally:
        bar.close()
    if args.json:
        print(json.dumps(record))
    elif "error" in record:
        print(f"{path}: error: {record['error']}")
    else:
        print(f"{path}: {record['frames']} frames, {len(record['face_ids'])} face"
              f"{'s' if len(record['face_ids']) != 1 else ''} tracked, {record['rows']} face rows -> {out}"
              + (f", {csv_path}" if csv_path else ""))
    return "error" not in record


if __name__ == "__main__":
    sys.exit(main())
