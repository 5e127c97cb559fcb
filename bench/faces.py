"""Which face sizes each detector finds, in which frames, at what cost.

    python bench/faces.py [--detectors auto full short] [--out bench/results] [--readme README.md]

Real faces (examples/astronaut.jpg, examples/grace_hopper.jpg) are cut out around the face
the full-range detector finds at full size, scaled so the face box is 24 to 400 px wide and
pasted at five fixed positions into 640 x 480, 1280 x 720, 1920 x 1080 and 4000 x 3000
frames, over a plain grey background and over face-free photos (bench/images/). A placement
counts as found when a detection overlaps the pasted face box with IoU >= 0.3; any other
detection is false. The face-free photos are also searched on their own, at their own size
and scaled to each frame. Time per frame is the median detect() call. Writes faces.json and
faces.md. A benchmark, not a test: pause other work meanwhile.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.readme import write_results  # noqa: E402
from demo.pipeline.faces import DETECTOR_KINDS, FaceDetector  # noqa: E402

FACES = [ROOT / "examples" / "astronaut.jpg", ROOT / "examples" / "grace_hopper.jpg"]
FACE_FREE = sorted((ROOT / "bench" / "images").glob("*.jpg")) + [
    ROOT / "examples" / "chelsea_cat_no_face.jpg", ROOT / "examples" / "coffee.jpg"]
FRAMES = [(640, 480), (1280, 720), (1920, 1080), (4000, 3000)]
WIDTHS = [24, 32, 40, 58, 80, 120, 200, 400]
POSITIONS = [(0.5, 0.5), (0.15, 0.2), (0.8, 0.25), (0.3, 0.8), (0.7, 0.7)]  # face centre, fraction of frame
MARGIN = 1.6  # the pasted patch around the face box: head, hair and some background


def rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def face_patches() -> list[tuple[np.ndarray, tuple[float, float, float, float]]]:
    """Each face image cut to MARGIN times its face box; the box in the patch's coordinates."""
    out = []
    with FaceDetector("full") as detector:
        for path in FACES:
            image = rgb(path)
            x, y, w, h = detector.detect(image)[0].box
            side = int(max(w, h) * MARGIN)
            x0 = max(0, int(x + w / 2 - side / 2))
            y0 = max(0, int(y + h / 2 - side / 2))
            patch = image[y0 : y0 + side, x0 : x0 + side]
            out.append((patch, (x - x0, y - y0, w, h)))
    return out


def backgrounds(width: int, height: int) -> dict[str, np.ndarray]:
    plain = np.full((height, width, 3), 128, np.uint8)
    out = {"plain": plain}
    for path in FACE_FREE[:2]:  # two cluttered scenes keep the run short
        out[path.stem] = np.asarray(Image.open(path).convert("RGB").resize((width, height), Image.BILINEAR))
    return out


def paste(frame: np.ndarray, patch: np.ndarray, box, face_width: int, centre) -> tuple[np.ndarray, tuple]:
    scale = face_width / box[2]
    size = max(1, int(round(patch.shape[1] * scale)))
    small = np.asarray(Image.fromarray(patch).resize((size, size), Image.LANCZOS))
    H, W = frame.shape[:2]
    cx, cy = int(centre[0] * W), int(centre[1] * H)
    fx, fy = box[0] * scale, box[1] * scale  # face box inside the scaled patch
    fw, fh = box[2] * scale, box[3] * scale
    x0 = int(np.clip(cx - fx - fw / 2, 0, W - size))
    y0 = int(np.clip(cy - fy - fh / 2, 0, H - size))
    out = frame.copy()
    out[y0 : y0 + size, x0 : x0 + size] = small
    return out, (x0 + fx, y0 + fy, fw, fh)


def iou(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    common = ix * iy
    return common / (a[2] * a[3] + b[2] * b[3] - common)


def timed(detector: FaceDetector, image: np.ndarray, times: list[float]):
    start = time.perf_counter()
    faces = detector.detect(image)
    times.append(time.perf_counter() - start)
    return faces


def measure(kind: str, patches) -> dict:
    result = {"recall": {}, "false_on_faces": {}, "false_face_free": {}, "ms_per_frame": {}}
    with FaceDetector(kind) as detector:
        detector.detect(np.full((480, 640, 3), 128, np.uint8))  # warm up
        for width, height in FRAMES:
            frame_key = f"{width}x{height}"
            times: list[float] = []
            found = {w: 0 for w in WIDTHS}
            tried = {w: 0 for w in WIDTHS}
            false = 0
            for background in backgrounds(width, height).values():
                for patch, box in patches:
                    for face_width in WIDTHS:
                        if face_width * MARGIN > min(width, height):
                            continue
                        for centre in POSITIONS:
                            image, truth = paste(background, patch, box, face_width, centre)
                            faces = timed(detector, image, times)
                            hits = [f for f in faces if iou(f.box, truth) >= 0.3]
                            found[face_width] += bool(hits)
                            tried[face_width] += 1
                            false += len(faces) - min(1, len(hits))
            result["recall"][frame_key] = {w: round(found[w] / tried[w], 3) for w in WIDTHS if tried[w]}
            result["false_on_faces"][frame_key] = false
            result["ms_per_frame"][frame_key] = round(1000 * float(np.median(times)), 1)
            result["false_face_free"][frame_key] = sum(
                len(detector.detect(np.asarray(Image.open(p).convert("RGB").resize((width, height), Image.BILINEAR))))
                for p in FACE_FREE)
            print(kind, frame_key, result["recall"][frame_key], "false", false, result["false_face_free"][frame_key],
                  f"{result['ms_per_frame'][frame_key]} ms", flush=True)
        result["false_face_free"]["native"] = sum(len(detector.detect(rgb(p))) for p in FACE_FREE)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--detectors", nargs="*", default=list(DETECTOR_KINDS), choices=DETECTOR_KINDS)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--readme", type=Path, help="rewrite the line between <!-- faces:start/end --> here")
    args = p.parse_args(argv)

    patches = face_patches()
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "faces": [f.name for f in FACES], "face_free": [f.name for f in FACE_FREE],
              "positions": len(POSITIONS), "detectors": {}}
    for kind in args.detectors:
        result["detectors"][kind] = measure(kind, patches)

    lines = ["Recall (share of placements found) by face width in pixels; false detections; median time per frame.", ""]
    lines += ["| detector | frame | " + " | ".join(f"{w} px" for w in WIDTHS) + " | false (with faces / face-free) | ms per frame | ms per megapixel |",
              "|---|---|" + "---:|" * (len(WIDTHS) + 3)]
    for kind, r in result["detectors"].items():
        for width, height in FRAMES:
            key = f"{width}x{height}"
            cells = [f"{r['recall'][key][w]:.2f}" if w in r["recall"][key] else "" for w in WIDTHS]
            ms = r["ms_per_frame"][key]
            lines.append(f"| {kind} | {width} x {height} | " + " | ".join(cells) +
                         f" | {r['false_on_faces'][key]} / {r['false_face_free'][key]} | {ms} | {ms / (width * height / 1e6):.1f} |")
    native = ", ".join(f"{k} {r['false_face_free']['native']}" for k, r in result["detectors"].items())
    lines += ["", f"{len(FACES)} faces ({', '.join(result['faces'])}) x {len(POSITIONS)} positions x 3 backgrounds "
                  f"(plain grey, {', '.join(p.stem for p in FACE_FREE[:2])}) per cell; a width is left out where the "
                  f"pasted head does not fit the frame. Face-free: {', '.join(result['face_free'])}, each at its own size "
                  f"(false detections: {native}) "
                  f"and scaled to each frame. {result['machine']}. Written by `python bench/faces.py`."]
    table = "\n".join(lines) + "\n"
    auto = result["detectors"].get("auto")
    summary = None
    if auto:
        summary = ("Faces, measured by `bench/faces.py`: the default detector (`auto`) finds a face 40 px wide in "
                   + ", ".join(f"{k.replace('x', ' x ')} {auto['recall'][k][40]:.0%}" for k in auto["recall"] if 40 in auto["recall"][k])
                   + " of placements; " + ", ".join(f"{k.replace('x', ' x ')} {auto['ms_per_frame'][k]} ms" for k in auto["ms_per_frame"])
                   + " per frame ([table](bench/results/faces.md)).")
    write_results(args.out, "faces", result, table, args.readme if summary else None, summary)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
