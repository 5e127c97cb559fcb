"""The one input gate: every image that reaches the pipeline comes through here.

Uploads, clipboard pastes, data URLs, API calls, webcam frames and CLI files all end in
`image_from_payload` (Gradio) or `demo.pipeline.images.load_rgb` (CLI, arrays). The gate decides
what may be opened at all: a server path only when it lies in one of the allowed folders
(Gradio's upload folder, the shipped examples), so an API caller cannot make the server
read a file of its own; a data URL only while its encoded length is under the byte limit.
Size, pixel count and frame count are checked from the header before anything is decoded
(demo.pipeline.images). Each refusal is logged as one line, a reason and a size, never content or
a file name.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from pathlib import Path

import numpy as np

from demo.pipeline.images import MAX_FILE_BYTES, ImageError, load_rgb

log = logging.getLogger("ekspresi.gate")

DATA_URL_PREFIX = "data:"
NOT_UPLOADED = "only files uploaded to this page can be analysed; upload the file instead of naming a path or URL"
EXPIRED = "this upload is no longer on the server (uploads are deleted after {minutes}); upload the image again"


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def allowed_path(path: str | os.PathLike, allowed: list[Path]) -> Path:
    """The real path of `path` if it lies inside one of `allowed`, else ImageError.

    The refusal says the same for a file that exists and one that does not, so the gate
    never tells a caller what is on the server's disk.
    """
    real = Path(os.path.realpath(path))
    if not any(_inside(real, Path(os.path.realpath(folder))) for folder in allowed):
        raise ImageError(NOT_UPLOADED)
    return real


def uploaded_file(path: str | os.PathLike, allowed: list[Path], expiry: str = "a few minutes") -> Path:
    """The real path of an uploaded file that is still on the server, else ImageError."""
    real = allowed_path(path, allowed)
    if not real.is_file():  # inside the upload folder, so it was uploaded once and since deleted
        raise ImageError(EXPIRED.format(minutes=expiry))
    return real


def decode_data_url(url: str) -> bytes:
    """The bytes of a base64 `data:` URL, refused from its length before decoding when too large."""
    header, sep, encoded = url.partition(",")
    if not sep or ";base64" not in header:
        raise ImageError("a data URL must be base64-encoded (data:image/...;base64,...)")
    if len(encoded) * 3 // 4 > MAX_FILE_BYTES + 3:
        size_mb = len(encoded) * 3 / 4 / 2**20
        raise ImageError(f"the image is {size_mb:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("the data URL is not valid base64") from None


def image_from_payload(payload, allowed: list[Path], expiry: str = "a few minutes") -> np.ndarray:
    """An RGB uint8 array from a Gradio file payload (an object with .path and .url), or ImageError."""
    url = getattr(payload, "url", None) or ""
    path = getattr(payload, "path", None)
    if url.startswith(DATA_URL_PREFIX):
        return load_rgb(decode_data_url(url))
    if not path:
        raise ImageError("no image in the request")
    return load_rgb(uploaded_file(path, allowed, expiry))


def log_rejection(err: Exception, source: str, size: int | None = None) -> None:
    """One line per refused input: where it came from, why, how big. Never its name or content."""
    reason = str(err).split(";")[0].split(" (")[0].strip()[:160]
    log.info("rejected %s input: %s%s", source, reason, f" ({size} bytes)" if size is not None else "")


def payload_size(payload) -> int | None:
    """Bytes of a payload as far as can be told without reading it (for the log line)."""
    url = getattr(payload, "url", None) or ""
    if url.startswith(DATA_URL_PREFIX):
        return len(url.partition(",")[2]) * 3 // 4
    size = getattr(payload, "size", None)
    return int(size) if isinstance(size, int) else None
