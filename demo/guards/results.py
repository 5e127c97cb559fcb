"""Annotated images written to files of their own before Gradio serves them.

Gradio caches a returned array under a name made from its content hash and writes it in
place, so two requests with the same result (two people trying the same example at once)
write one file together: one of them can be sent a file that the other has just emptied
("peer closed connection ... received 0 bytes", seen under load). A returned file path is
served as it is when it already lies in Gradio's cache folder, so each result goes to a
unique file there (demo.guards.server_files.ServerFiles.results), written whole and renamed, and
the server's sweeper deletes it with everything else.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
from PIL import Image


class ResultFiles:
    def __init__(self, folder: str | os.PathLike):
        # No default: a shared folder under /tmp would keep users' faces that no sweeper deletes.
        self.folder = Path(folder)

    def new_folder(self) -> Path:
        """A fresh folder for one request's files (a video and its tables)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        folder = self.folder / uuid.uuid4().hex
        folder.mkdir()
        return folder

    def save_jpeg(self, rgb: np.ndarray, quality: int = 90) -> str:
        """Write one RGB image to a new, complete JPEG file and return its path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"annotated-{uuid.uuid4().hex}.jpg"
        tmp = path.with_suffix(".part")
        Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").save(tmp, "JPEG", quality=quality)
        os.replace(tmp, path)  # complete or absent, never half-written
        return str(path)
