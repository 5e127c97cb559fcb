"""Draw face boxes with emotion and confidence on an image, one colour per emotion."""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLOURS = {
    "angry": (230, 57, 70),
    "disgust": (106, 153, 78),
    "fear": (155, 93, 229),
    "happy": (255, 190, 11),
    "neutral": (173, 181, 189),
    "sad": (58, 134, 255),
    "surprise": (255, 112, 166),
}


def colour_for(label: str) -> tuple[int, int, int]:
    """The emotion's colour; labels of a user's own classes get a stable colour of their own."""
    if label in COLOURS:
        return COLOURS[label]
    digest = hashlib.md5(label.encode()).digest()
    return tuple(64 + b % 160 for b in digest[:3])


@lru_cache(maxsize=16)
def _font(size: int):
    return ImageFont.load_default(size=size)


def draw_faces(rgb: np.ndarray, faces: list[dict]) -> np.ndarray:
    """A copy of the image with a box and 'label 93%' per face dict (box, label, confidence, and
    for tracked faces an id: '#2 label 93%')."""
    im = Image.fromarray(rgb)
    draw = ImageDraw.Draw(im)
    scale = max(im.size) / 640
    width = max(2, int(round(3 * scale)))
    font = _font(max(12, int(round(18 * scale))))
    for face in faces:
        x, y, w, h = face["box"]
        colour = colour_for(face["label"])
        draw.rectangle((x, y, x + w, y + h), outline=colour, width=width)
        prefix = f"#{face['id']} " if "id" in face else ""
        text = f"{prefix}{face['label']} {face['confidence']:.0%}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left, bottom - top
        pad = max(2, width)
        ty = y - th - 2 * pad if y - th - 2 * pad >= 0 else y + h  # above the box, or below at the top edge
        draw.rectangle((x, ty, x + tw + 2 * pad, ty + th + 2 * pad), fill=colour)
        draw.text((x + pad - left, ty + pad - top), text, fill=(0, 0, 0), font=font)
    return np.asarray(im)
