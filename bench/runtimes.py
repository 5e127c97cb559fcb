"""Milliseconds per face for each runtime (Keras, ONNX Runtime, LiteRT) and each model.

    make export && python bench/runtimes.py [--calls 200] [--out bench/results] [--readme README.md]

Times one model call (no mirror image) on batches of 1 and 8 face crops, already prepared
(48 x 48 float32), for every NAME.keras in weights/ and its NAME.onnx / NAME.tflite
(python -m trainer.export). Median of --calls calls after 20 warm-up calls. Writes
runtimes.json and runtimes.md, and with --readme the table between the README's
runtimes markers. A benchmark, not a test: pause other work on the machine while it runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.readme import write_results  # noqa: E402
from demo.pipeline.classify import RUNTIMES, EmotionModel  # noqa: E402
from demo.pipeline.faces import FaceDetector, crop_face  # noqa: E402
from demo.pipeline.images import load_rgb  # noqa: E402

BATCHES = (1, 8)


def face_crops(n: int) -> list[np.ndarray]:
    """The four faces of examples/four_faces.jpg, repeated to n crops."""
    rgb = load_rgb(ROOT / "examples" / "four_faces.jpg")
    with FaceDetector("short") as detector:
        crops = [crop_face(rgb, f.box) for f in detector.detect(rgb)]
    return [crops[i % len(crops)] for i in range(n)]


def ms_per_face(model: EmotionModel, batch: np.ndarray, calls: int) -> float:
    for _ in range(20):
        model._fn(batch)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        model._fn(batch)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000 / len(batch)


def markdown(result: dict) -> str:
    lines = ["| model | runtime | file (MB) | batch 1, ms / face | batch 8, ms / face |",
             "|---|---|---:|---:|---:|"]
    for name, rows in result["models"].items():
        for runtime, row in rows.items():
            lines.append(f"| {name} | {runtime} | {row['file_mb']} | {row['batch_1']:.2f} | {row['batch_8']:.2f} |")
    lines += ["", f"One model call on prepared 48 x 48 crops (no mirror image), median of {result['calls']} calls; "
                  f"{result['machine']}. Written by `python bench/runtimes.py`."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", type=Path, default=ROOT / "weights")
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--readme", type=Path, help="rewrite the table between <!-- runtimes:start/end --> here")
    args = p.parse_args(argv)

    crops = face_crops(max(BATCHES))
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "calls": args.calls, "models": {}}
    for keras_file in sorted(args.weights.glob("*.keras")):
        rows = {}
        for runtime, suffix in RUNTIMES.items():
            path = keras_file.with_suffix(suffix)
            if not path.is_file():
                print(f"{path.name} missing: run make export", file=sys.stderr)
                continue
            model = EmotionModel.load(path)
            prepared = model.prepare(crops)
            rows[runtime] = {"file_mb": round(path.stat().st_size / 2**20, 1),
                             **{f"batch_{n}": round(ms_per_face(model, prepared[:n], args.calls), 3) for n in BATCHES}}
            print(keras_file.stem, runtime, rows[runtime], flush=True)
        result["models"][keras_file.stem] = rows
    table = markdown(result)
    write_results(args.out, "runtimes", result, table, args.readme)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
