"""Where the server keeps users' images while serving them, and how they are removed.

Gradio writes every upload and every returned image to its cache folder and serves it by
URL to whoever has the URL. The server gives Gradio a private folder of its own per process
(GRADIO_TEMP_DIR = <tmp>/ekspresi-<pid>-<random>, mode 0700) and:

- deletes every file in it MAX_AGE_S after it was written, checked every SWEEP_EVERY_S;
- keeps its images under MAX_BYTES, deleting the oldest first when busy; videos (a 200 MB
  upload must wait for its user to press Analyse) only count towards HARD_MAX_BYTES, above
  which the oldest files of any kind go;
- deletes the whole folder when the server stops (SIGTERM, Ctrl-C, normal exit), and the
  folders of earlier servers that were killed before they could (their process is gone).

Files that exist when the page has been built (Gradio's copies of the shipped examples) are
kept: the Examples gallery serves them. Files of an earlier run are never served: Gradio
serves only from the current process's folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from demo.pipeline.video import VIDEO_SUFFIXES

log = logging.getLogger("ekspresi.files")

MAX_AGE_S = 120  # what the page and the README promise: "deleted within 2 minutes"
SWEEP_EVERY_S = 1.0
MAX_BYTES = 40 * 2**20  # above one maximal image (25 MB); ~20 s of a busy server's images
HARD_MAX_BYTES = 1024 * 2**20  # five maximal videos
LARGE_SUFFIXES = VIDEO_SUFFIXES  # videos: only the hard limit applies
PREFIX = "ekspresi-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale(base: Path) -> int:
    """Delete the folders that servers which are no longer running left in `base`."""
    removed = 0
    for folder in base.glob(f"{PREFIX}*"):
        pid = folder.name[len(PREFIX):].split("-")[0]
        if folder.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


class ServerFiles:
    """The server's private file folder, swept by a background thread."""

    def __init__(self, root: Path, max_age_s: float = MAX_AGE_S, max_bytes: int = MAX_BYTES,
                 every_s: float = SWEEP_EVERY_S, hard_max_bytes: int = HARD_MAX_BYTES):
        self.root = Path(root)
        self.results = self.root / "results"
        self.max_age_s, self.max_bytes, self.every_s = max_age_s, max_bytes, every_s
        self.hard_max_bytes = hard_max_bytes
        self._kept: set[Path] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def create(cls, base: str | os.PathLike | None = None, **kw) -> ServerFiles:
        """A new private folder under `base` (the system temp folder), set as Gradio's cache."""
        base = Path(base or tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        remove_stale(base)
        root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base))  # mode 0700
        os.environ["GRADIO_TEMP_DIR"] = str(root)  # read by each gr.Blocks and component when built
        files = cls(root, **kw)
        files.results.mkdir()
        return files

    @property
    def expiry(self) -> str:
        """The promise, in words, for messages and the page."""
        minutes = self.max_age_s / 60
        return f"{minutes:g} minute{'s' if minutes != 1 else ''}" if minutes >= 1 else f"{self.max_age_s:g} seconds"

    def keep_existing(self) -> None:
        """Never sweep what is there now (call once the page is built: the examples' copies)."""
        self._kept = {p for p in self.root.rglob("*") if p.is_file()}

    def _files(self):
        for path in self.root.rglob("*"):
            if path in self._kept:
                continue
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if path.is_file():
                yield path, st.st_mtime, st.st_size

    def usage(self) -> int:
        """Bytes of users' files on disk now (kept example copies not counted)."""
        return sum(size for _, _, size in self._files())

    def sweep(self, now: float | None = None) -> int:
        """Delete expired files, then the oldest until under the byte limits. Returns how many."""
        now = time.time() if now is None else now
        expired, kept = [], []
        for path, mtime, size in sorted(self._files(), key=lambda f: f[1]):  # oldest first
            (expired if now - mtime >= self.max_age_s else kept).append((path, size))
        doomed = [path for path, _ in expired]
        small = sum(size for path, size in kept if path.suffix.lower() not in LARGE_SUFFIXES)
        total = sum(size for _, size in kept)
        for path, size in kept:
            if small <= self.max_bytes and total <= self.hard_max_bytes:
                break
            large = path.suffix.lower() in LARGE_SUFFIXES
            if large and total <= self.hard_max_bytes:
                continue  # a video waits for its user; only the hard limit removes it early
            doomed.append(path)
            total -= size
            small -= 0 if large else size
        removed = 0
        for path in doomed:
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:  # deleted meanwhile
                pass
        for folder in sorted((p for p in self.root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            # Gradio's one-folder-per-file hash folders, once empty. Only quiet ones: Gradio makes
            # the folder a moment before it writes the file into it.
            try:
                if folder != self.results and now - folder.stat().st_mtime > 10 and not any(folder.iterdir()):
                    folder.rmdir()
            except OSError:  # filled or removed meanwhile
                pass
        return removed

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.sweep()
            except OSError as err:  # a folder removed under us; the next sweep sees the new state
                log.warning("sweep: %s", err)

    def start(self) -> ServerFiles:
        self._thread = threading.Thread(target=self._run, name="ekspresi-sweeper", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop sweeping and delete the folder with everything in it."""
        self._stop.set()
        shutil.rmtree(self.root, ignore_errors=True)
