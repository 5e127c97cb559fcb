"""A dim, noisy frame annotated by two models side by side: the README's picture of what robustness training changed.

    python tools/before_after.py --before OLD.keras --after weights/cnn.keras [--image examples/grace_hopper.jpg]
        [--out assets/dim_frame_before_after.jpg]

The photo is turned into what a webcam gives in a dim room: scaled to --width pixels (a face of
about 60 to 100 px, as a webcam frame holds it), brightness x 0.3, sensor noise (Gaussian, sigma
10 levels, per pixel and channel, fixed seed) and JPEG at quality 40. Both
models see the same faces (one detection, the default detector) under their served views, as
an upload gets them; each half is drawn by the demo's overlay and captioned with the model.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from demo.pipeline.analyse import analyse  # noqa: E402
from demo.pipeline.classify import EmotionModel  # noqa: E402
from demo.pipeline.faces import FaceDetector  # noqa: E402
from demo.pipeline.images import load_rgb  # noqa: E402
from demo.pipeline.overlay import draw_faces  # noqa: E402

GAIN, NOISE, QUALITY, SEED = 0.3, 10.0, 40, 0


def dim_noisy(rgb: np.ndarray, width: int) -> np.ndarray:
    im = Image.fromarray(rgb)
    im = im.resize((width, round(im.height * width / im.width)), Image.Resampling.LANCZOS)
    rgb = np.asarray(im)
    noisy = rgb.astype(np.float32) * GAIN + np.random.default_rng(SEED).normal(0, NOISE, rgb.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=QUALITY)
    return load_rgb(buf.getvalue())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", type=Path, required=True, help="the model before (a .keras file with its .json)")
    p.add_argument("--after", type=Path, default=ROOT / "weights" / "cnn.keras")
    p.add_argument("--image", type=Path, default=ROOT / "examples" / "grace_hopper.jpg")
    p.add_argument("--out", type=Path, default=ROOT / "assets" / "dim_frame_before_after.jpg")
    p.add_argument("--labels", nargs=2, default=["before", "after"])
    p.add_argument("--width", type=int, default=480)
    args = p.parse_args(argv)
    frame = dim_noisy(load_rgb(args.image), args.width)
    halves = []
    with FaceDetector() as detector:
        for path, label in zip((args.before, args.after), args.labels):
            faces = analyse(frame, EmotionModel.load(path), detector)
            print(label, [(f["label"], f["confidence"]) for f in faces])
            im = Image.fromarray(draw_faces(frame, faces))
            ImageDraw.Draw(im).text((8, 8), label, fill=(255, 255, 0), font_size=max(14, im.width // 32))
            halves.append(im)
    w, h = halves[0].size
    both = Image.new("RGB", (2 * w + 10, h), (255, 255, 255))
    for i, im in enumerate(halves):
        both.paste(im, (i * (w + 10), 0))
    both.thumbnail((1600, 1600))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    both.save(args.out, quality=85)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
