"""Small line charts of emotion probabilities over time, drawn on the server as images.

Used by the live timeline and by the video tab's per-face charts. Drawn with Pillow in about
a millisecond: a browser-side chart re-rendered a few times a second took the main thread
from the webcam and cut the live frame rate from ~24 to ~15 frames a second (bench/webcam.py).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from demo.pipeline.overlay import colour_for


def line_chart(times: np.ndarray, probs: np.ndarray, class_names, t_min: float, t_max: float,
               size=(480, 240), title: str | None = None, tick_label=lambda t: f"{t:g}s") -> np.ndarray:
    """One line per class over [t_min, t_max] seconds, probabilities 0 to 1, a legend below."""
    w, h = size
    left, right, top, bottom = 34, 12, 22 if title else 10, 46
    im = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=11)
    pw, ph = w - left - right, h - top - bottom
    span = max(t_max - t_min, 1e-6)

    def xy(t, p):
        return left + (t - t_min) / span * pw, top + (1 - p) * ph

    if title:
        draw.text((left, 4), title, fill=(20, 20, 20), font=font)
    for p in (0.0, 0.5, 1.0):
        draw.line([xy(t_min, p), xy(t_max, p)], fill=(225, 225, 225))
        draw.text((4, xy(t_min, p)[1] - 6), f"{p:.1f}", fill=(90, 90, 90), font=font)
    for t in np.linspace(t_min, t_max, 4):
        x, y = xy(t, 0)
        draw.text((x - 10, y + 3), tick_label(round(float(t), 1)), fill=(90, 90, 90), font=font)
    for k, name in enumerate(class_names):
        colour = colour_for(name)
        points = [xy(t, p) for t, p in zip(times, probs[:, k])]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        lx = left + k * (pw // max(1, len(class_names)))
        draw.rectangle((lx, h - 14, lx + 8, h - 6), fill=colour)
        draw.text((lx + 11, h - 17), name, fill=(40, 40, 40), font=font)
    return np.asarray(im)
