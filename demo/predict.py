"""Emotions of the faces in image files and folders, from the command line.

    python -m demo.predict examples/astronaut.jpg photos/ [--model cnn] [--json]

Prints one line per face, or with --json one object per file (exit 1 if a file was not a
usable image, 2 if nothing could be read at all: a missing path, no images, a missing model):
{"file": ..., "faces": [{"box": [x, y, w, h], "label", "confidence", "top3"}]}
or {"file": ..., "error": ...} for a file that is not a usable image.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def iter_files(paths):
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield p


def main(argv=None) -> int:
    from demo.classify import ModelStore, ModelUnavailable
    from demo.faces import DETECTORS, FaceDetector
    from demo.images import ImageError, load_rgb
    from demo.pipeline import analyse

    p = argparse.ArgumentParser(prog="python -m demo.predict", description=__doc__.split("\n")[0])
    p.add_argument("paths", nargs="+", help="image files or folders")
    p.add_argument("--model", help="model name in weights/ (default: the first shipped one), or 'ensemble'")
    p.add_argument("--weights", type=Path, help="folder of models (default: weights/)")
    p.add_argument("--runtime", choices=["keras", "onnx", "litert"], default="keras",
                   help="run NAME.keras with Keras, or NAME.onnx / NAME.tflite (python -m trainer.export) "
                        "with ONNX Runtime / LiteRT")
    p.add_argument("--detector", choices=sorted(DETECTORS), default="short")
    p.add_argument("--whole-image", action="store_true", help="treat each image as one face crop")
    p.add_argument("--json", action="store_true", help="JSON lines instead of text")
    args = p.parse_args(argv)

    # Every path is checked before TensorFlow loads (seconds), so a typo fails at once.
    missing = [str(path) for path in args.paths if not Path(path).exists()]
    if missing:
        print(f"error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    files = list(iter_files(args.paths))
    if not files:
        suffixes = " ".join(sorted(IMAGE_SUFFIXES))
        print(f"error: no image files ({suffixes}) in {', '.join(args.paths)}", file=sys.stderr)
        return 2

    store = ModelStore(args.weights, runtime=args.runtime)
    try:
        model = store.get(args.model or store.default())
    except ModelUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    failures = 0
    with FaceDetector(args.detector) as detector:
        for path in files:
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


if __name__ == "__main__":
    sys.exit(main())
