"""Decode user images safely: clear errors for bad files, any colour mode to RGB uint8."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Far above any photo or webcam frame, far below what would exhaust memory.
MAX_PIXELS = 50_000_000
MAX_FILE_BYTES = 25 * 1024 * 1024
SUPPORTED = "JPG, PNG, WebP, BMP or a still GIF"
# Pillow's decoders we let near user data. Others it knows (EPS runs Ghostscript, PSD, ICO...)
# are refused from the header. A camera JPEG with a preview image opens through JPEG as "MPO".
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
Image.init()  # registers every plugin, so Image.open(formats=FORMATS) knows each name
# Pixel counts are checked against MAX_PIXELS from the header (load_rgb); Pillow's own warning
# for large images would only print the same fact to the server's log once more.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageError(ValueError):
    """An input that is not a usable image; the message is meant for the user."""


def _open(source) -> Image.Image:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        # Messages name no file: callers that may show names (the CLI) print the path themselves,
        # and the server's log never records what users called their pictures.
        if not path.is_file():
            raise ImageError("file not found")
        size = path.stat().st_size
        if size == 0:
            raise ImageError("the file is empty (0 bytes)")
        if size > MAX_FILE_BYTES:
            raise ImageError(f"the file is {size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB")
        source = path.read_bytes()
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageError("the file is empty (0 bytes)")
        if len(source) > MAX_FILE_BYTES:
            raise ImageError(f"the file is {len(source) / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB")
        try:
            return Image.open(io.BytesIO(source), formats=FORMATS)
        except UnidentifiedImageError:
            raise ImageError(f"not an image file; upload {SUPPORTED}") from None
        except Image.DecompressionBombError as err:  # Pillow refuses > ~179 MP while opening
            raise ImageError(f"image is too large ({err}); the limit is {MAX_PIXELS // 10**6} megapixels") from None
        except (OSError, SyntaxError, ValueError) as err:
            raise ImageError(f"the image file is truncated or corrupt ({err})") from None
    if isinstance(source, Image.Image):
        return source
    raise ImageError(f"unsupported input type {type(source).__name__}")


def to_rgb_array(im: Image.Image) -> np.ndarray:
    """Any Pillow mode (L, LA, P, RGBA, CMYK, I;16, I, F, 1) as an RGB uint8 array."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # High bit depth: stretch the used range to 0-255 instead of clipping it.
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        im = Image.fromarray(arr.astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)  # transparent parts shown as white
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _check_pixels(w: int, h: int) -> None:
    if w * h > MAX_PIXELS:
        raise ImageError(f"image is too large: {w} x {h} pixels; the limit is {MAX_PIXELS // 10**6} megapixels")


def load_rgb(source) -> np.ndarray:
    """A path, bytes, PIL image or array as an upright RGB uint8 array, or ImageError."""
    if isinstance(source, np.ndarray):
        arr = source
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or arr.size == 0:
            raise ImageError(f"expected an HxWx3 image array, got shape {arr.shape}")
        _check_pixels(arr.shape[1], arr.shape[0])
        if arr.shape[2] == 1:
            arr = np.repeat(arr, 3, axis=2)
        return np.ascontiguousarray(arr[..., :3].astype(np.uint8, copy=False))
    im = _open(source)
    _check_pixels(*im.size)  # from the header: nothing is decoded yet
    if getattr(im, "n_frames", 1) > 1 and im.format != "MPO":  # an MPO's first frame is the photo
        raise ImageError(f"animated or multi-page images are not supported ({im.n_frames} frames); upload a still image")
    try:
        im.load()
        im = ImageOps.exif_transpose(im)
        return np.ascontiguousarray(to_rgb_array(im))
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"the image file is truncated or corrupt ({err})") from None
