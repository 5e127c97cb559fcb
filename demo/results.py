"""Annotated images written to files of their own before Gradio serves them.

Gradio caches a returned array under a name made from its content hash and writes it in
place, so two requests with the same result (two people trying the same example at once)
write one file together: one of them can be sent a file that the other has just emptied
("peer closed connection ... received 0 bytes", seen under load). A returned file path is
instead copied into the cache under a temporary name and renamed, which is atomic; so each
result goes to a unique file here first.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

MAX_AGE_S = 15 * 60  # Gradio copies the file at once; older ones are only litter


class ResultFiles:
    def __init__(self, folder: str | os.PathLike | None = None, max_age_s: float = MAX_AGE_S):
        # Under the system temp folder: Gradio only serves files from there or the working folder.
        self.folder = Path(folder or Path(tempfile.gettempdir()) / "ekspresi-results")
        self.max_age_s = max_age_s

    def save_jpeg(self, rgb: np.ndarray, quality: int = 90) -> str:
        """Write one RGB image to a new, complete JPEG file and return its path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.prune()
        path = self.folder / f"annotated-{uuid.uuid4().hex}.jpg"
        tmp = path.with_suffix(".part")
        Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").save(tmp, "JPEG", quality=quality)
        os.replace(tmp, path)  # complete or absent, never half-written
        return str(path)

    def prune(self) -> None:
        """Delete results older than max_age_s (Gradio has its own copies by then)."""
        cutoff = time.time() - self.max_age_s
        for old in self.folder.glob("annotated-*"):
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
            except FileNotFoundError:  # another request pruned it first
                pass
