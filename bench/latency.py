"""Per-frame latency of a stream (webcam, video) at 640 x 480, one face and four faces.

    python bench/latency.py [--models cnn mobilenetv2 ...] [--frames 100] [--out bench/results]

Each frame goes the way of a live or video frame: decode (JPEG bytes to RGB), detect (the
default detector's StreamSearch), crop, classify (one batched model call under the model's
live views, mirrored every other frame) and draw. Reports median and p95 per stage and in
total, for every model in weights/. Writes latency.json and latency.md. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from demo.pipeline.analyse import annotate, detect_and_classify, face_record  # noqa: E402
from demo.pipeline.classify import ModelStore  # noqa: E402
from demo.pipeline.faces import DEFAULT_DETECTOR, FaceDetector, StreamSearch  # noqa: E402
from demo.pipeline.images import load_rgb  # noqa: E402

STAGES = ["decode", "detect", "crop", "classify", "draw"]
SCENES = {"1 face": "astronaut.jpg", "4 faces": "four_faces.jpg"}


def frame_jpeg(name: str) -> bytes:
    """The example photo letterboxed into a 640 x 480 frame, JPEG-encoded like a webcam frame."""
    im = Image.open(ROOT / "examples" / name).convert("RGB")
    im.thumbnail((640, 480))
    frame = Image.new("RGB", (640, 480), (50, 50, 50))
    frame.paste(im, ((640 - im.width) // 2, (480 - im.height) // 2))
    buf = io.BytesIO()
    frame.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def run(model, detector, jpeg: bytes, frames: int, warmup: int = 10):
    search = StreamSearch(detector)
    rows = []
    for i in range(warmup + frames):
        t = {}
        start = time.perf_counter()
        rgb = load_rgb(jpeg)
        t["decode"] = (time.perf_counter() - start) * 1000
        boxes, probs = detect_and_classify(rgb, model, search, timings=t, view_set=model.live_views,
                                           mirrored=i % 2 == 1)
        faces = [face_record(box, p, model.class_names) for box, p in zip(boxes, probs)]
        annotate(rgb, faces, t)
        t["total"] = (time.perf_counter() - start) * 1000
        if i >= warmup:
            rows.append(t)
    return {k: {"median_ms": float(np.median([r[k] for r in rows])),
                "p95_ms": float(np.percentile([r[k] for r in rows], 95))} for k in STAGES + ["total"]}, len(faces)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="*", help="model names (default: all in weights/)")
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    store = ModelStore()
    names = args.models or store.available()
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
               "frame": "640x480 JPEG", "detector": DEFAULT_DETECTOR, "frames": args.frames, "models": {}}
    with FaceDetector() as detector:
        for name in names:
            model = store.get(name)
            results["models"][name] = {}
            for scene, file in SCENES.items():
                stats, n = run(model, detector, frame_jpeg(file), args.frames)
                results["models"][name][scene] = {"faces_found": n, **stats}
                print(f"{name:12s} {scene}: {stats['total']['median_ms']:.1f} ms median, "
                      f"{stats['total']['p95_ms']:.1f} ms p95 ({n} faces)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latency.json").write_text(json.dumps(results, indent=2))
    lines = [f"Per-frame latency of a stream, {results['frame']}, {results['machine']}, {args.frames} frames; "
             f"the {DEFAULT_DETECTOR} detector followed frame to frame, each model's live views, mirrored "
             "every other frame; median / p95 in ms.", "",
             "| model | scene | " + " | ".join(STAGES) + " | total |", "|---|---|" + "---:|" * (len(STAGES) + 1)]
    for name, scenes in results["models"].items():
        for scene, s in scenes.items():
            cells = " | ".join(f"{s[k]['median_ms']:.1f} / {s[k]['p95_ms']:.1f}" for k in STAGES + ["total"])
            lines.append(f"| {name} | {scene} ({s['faces_found']} found) | {cells} |")
    (args.out / "latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
