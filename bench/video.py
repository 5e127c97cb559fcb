"""End-to-end speed of video analysis: decode, detect, classify, track, draw, encode.

    python bench/video.py [--seconds 10] [--models cnn ...] [--out bench/results] [--readme README.md]

Makes a 640 x 480, 30 fps clip of one face moving (with a sound track) like the tests do,
runs demo.pipeline.video.analyse_video on it with each model (the default settings the page, the
API and the CLI use: the auto detector followed from frame to frame, the model's live views) and reports frames per second over the whole clip, median of --runs.
Writes video.json and video.md. A benchmark, not a test: pause other work meanwhile.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the clip maker the tests use
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from clips import write_clip  # noqa: E402

from bench.readme import write_results  # noqa: E402
from demo.pipeline.classify import ModelStore  # noqa: E402
from demo.pipeline.faces import DEFAULT_DETECTOR, FaceDetector  # noqa: E402
from demo.pipeline.video import analyse_video  # noqa: E402
from trainer.views import describe  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--models", nargs="*", help="default: every model in weights/")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--readme", type=Path, help="rewrite the line between <!-- video:start/end --> here")
    args = p.parse_args(argv)

    store = ModelStore()
    work = Path(tempfile.mkdtemp(prefix="ekspresi-video-bench-"))
    clip = write_clip(work / "clip.mp4", seconds=args.seconds)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "clip": {"width": 640, "height": 480, "fps": 30, "seconds": args.seconds, "faces": 1}, "models": {}}
    with FaceDetector() as detector:
        for name in args.models or store.available():
            model = store.get(name)
            analyse_video(clip, work / "warm.mp4", model, detector)  # graphs traced, caches warm
            rates = []
            for _ in range(args.runs):
                start = time.perf_counter()
                _, rows, frames = analyse_video(clip, work / "out.mp4", model, detector)
                rates.append(frames / (time.perf_counter() - start))
            result["models"][name] = {"views": model.live_views,
                                      "frames": frames,
                                      "face_rows": len(rows),
                                      "fps_median": round(float(np.median(rates)), 1),
                                      "fps_runs": [round(r, 1) for r in rates]}
            print(name, result["models"][name], flush=True)
    for f in work.iterdir():
        f.unlink()
    work.rmdir()
    lines = ["| model | views | frames | frames per second (median) | runs |", "|---|---|---:|---:|---|"]
    lines += [f"| {n} | {r['views']} | {r['frames']} | {r['fps_median']} | {', '.join(map(str, r['fps_runs']))} |"
              for n, r in result["models"].items()]
    lines += ["", f"A {args.seconds:g} s, 640 x 480, 30 fps clip with one face and a sound track, decoded, analysed "
                  f"(the {DEFAULT_DETECTOR} detector followed from frame to frame; each face under the model's live views, mirrored every other frame, tracked), drawn and encoded to H.264 + AAC by demo.pipeline.video; {result['machine']}. "
                  "Written by `python bench/video.py`."]
    table = "\n".join(lines) + "\n"
    first, r = next(iter(result["models"].items()))
    line = (f"Video files, measured by `bench/video.py`: a 640 x 480, 30 fps clip is analysed end to end at "
            f"{r['fps_median']} frames a second with the {first} model ({describe(r['views'])} a frame, mirrored every other frame; [table](bench/results/video.md)).")
    write_results(args.out, "video", result, table, args.readme, line)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
